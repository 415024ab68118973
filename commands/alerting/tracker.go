package alerting

import (
	"sort"
	"strings"
	"sync"
	"time"
)

// CheckName builds a Tracker key from a kind and its parts, joined by ":":
// CheckName("disk", "xenbuilder2", "/var/lib/mock") is
// "disk:xenbuilder2:/var/lib/mock".
func CheckName(kind string, parts ...string) string {
	return strings.Join(append([]string{kind}, parts...), ":")
}

// Tracker holds the state of every check, keyed by check name, and runs
// Step on each observation with its policy and clock. It is safe for
// concurrent use.
//
// Each check is expected to be observed by one caller at a time (the
// watcher's loop), which sends a Pending's notification and commits it
// before observing that check again.
type Tracker struct {
	policy Policy
	now    func() time.Time

	mu     sync.Mutex
	checks map[string]entry
	seq    uint64 // the last generation handed out, tracker-wide
}

// entry is one check's recorded state and its generation, unique across
// the tracker, which tells a stale Pending from a current one (0: none).
type entry struct {
	state State
	gen   uint64
}

// NewTracker returns an empty Tracker with policy p and the clock now (nil
// means time.Now).
func NewTracker(p Policy, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{policy: p, now: now, checks: make(map[string]entry)}
}

// Pending is the outcome of one observation: the notification to send,
// the check's state before and after. Unless Notification is None, the new
// state is not recorded until Commit is called.
type Pending struct {
	// Check is the check's name.
	Check string
	// Notification is what to send; None when there is nothing to send.
	Notification Notification
	// Prev is the recorded state the observation started from (for a
	// message such as "resolved after 2h": Next.Since.Sub(Prev.Since)).
	Prev State
	// Next is the state to record once the notification was sent.
	Next State

	tracker *Tracker
	gen     uint64
}

// Commit records Next as the check's state, to be called once the
// notification was sent. It reports whether it did: false when the check
// was observed (and recorded) or forgotten since, in which case the stale
// state is dropped. Committing a None Pending, or committing twice, is a
// no-op that reports false.
func (p Pending) Commit() bool {
	if p.tracker == nil || p.Notification == None {
		return false
	}
	t := p.tracker
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.checks[p.Check]
	if p.gen == 0 { // a check that had no entry yet
		if ok {
			return false
		}
	} else if !ok || e.gen != p.gen {
		return false
	}
	t.record(p.Check, p.Next)
	return true
}

// Observe runs Step for the named check with obs at the tracker's clock.
// When there is nothing to send (Notification None) the new state is
// recorded at once; otherwise the caller sends the notification and then
// calls Commit on the returned Pending. A notification that is not
// committed (the send failed) is produced again by the next Observe.
func (t *Tracker) Observe(check string, obs Observation) Pending {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.checks[check]
	var gen uint64
	if ok {
		gen = e.gen
	}
	next, n := Step(e.state, obs, t.policy, now)
	if n == None {
		t.record(check, next)
	}
	return Pending{Check: check, Notification: n, Prev: e.state, Next: next, tracker: t, gen: gen}
}

// record stores a check's state under a new generation; t.mu is held.
func (t *Tracker) record(check string, s State) {
	t.seq++
	t.checks[check] = entry{state: s, gen: t.seq}
}

// State returns the named check's recorded state, and whether it has one.
func (t *Tracker) State(check string) (State, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.checks[check]
	return e.state, ok
}

// Firing returns the names of the checks recorded as firing, sorted.
func (t *Tracker) Firing() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var names []string
	for name, e := range t.checks {
		if e.state.Firing {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Forget drops the named check's state, e.g. when it leaves the
// configuration; a Pending for it no longer commits.
func (t *Tracker) Forget(check string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.checks, check)
}
