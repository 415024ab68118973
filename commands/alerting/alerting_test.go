package alerting

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// step is one observation in a sequence: at t0+at, obs yields want; unsent
// simulates a notification that could not be delivered.
type step struct {
	at     time.Duration
	obs    Observation
	want   Notification
	unsent bool
}

// sent is a step whose notification, if any, is delivered.
func sent(at time.Duration, obs Observation, want Notification) step {
	return step{at: at, obs: obs, want: want}
}

// lost is a step whose notification could not be delivered.
func lost(at time.Duration, obs Observation, want Notification) step {
	return step{at: at, obs: obs, want: want, unsent: true}
}

var errSSH = errors.New("ssh: connect to xenbuilder2: connection refused")

func TestStepSequences(t *testing.T) {
	policy := Policy{Repeat: 6 * time.Hour, Hysteresis: 2}
	m := func(v float64) Observation { return Measured(v, 90) }
	tests := []struct {
		name  string
		steps []step
	}{
		{"healthy stays quiet", []step{
			sent(0, Failed(false), None),
			sent(5*time.Minute, m(10), None),
			sent(7*time.Hour, Failed(false), None),
		}},
		{"fire once", []step{
			sent(0, Failed(false), None),
			sent(5*time.Minute, Failed(true), Firing),
			sent(10*time.Minute, Failed(true), None),
			sent(15*time.Minute, Failed(true), None),
		}},
		{"first observation failing fires", []step{
			sent(0, m(95), Firing),
			sent(5*time.Minute, m(96), None),
		}},
		{"no repeat before Repeat, repeat after, then again", []step{
			sent(0, Failed(true), Firing),
			sent(6*time.Hour-time.Second, Failed(true), None),
			sent(6*time.Hour, Failed(true), Repeat),
			sent(6*time.Hour+5*time.Minute, Failed(true), None),
			sent(12*time.Hour-time.Minute, Failed(true), None),
			sent(12*time.Hour, Failed(true), Repeat),
		}},
		{"resolve once", []step{
			sent(0, Failed(true), Firing),
			sent(5*time.Minute, Failed(false), Resolved),
			sent(10*time.Minute, Failed(false), None),
			sent(7*time.Hour, Failed(false), None),
		}},
		{"fires again after resolving", []step{
			sent(0, Failed(true), Firing),
			sent(5*time.Minute, Failed(false), Resolved),
			sent(10*time.Minute, Failed(true), Firing),
		}},
		{"hysteresis: hovering at the threshold does not flap", []step{
			sent(0, m(90.0), Firing),
			sent(5*time.Minute, m(89.9), None),
			sent(10*time.Minute, m(90.1), None),
			sent(15*time.Minute, m(89.95), None),
			sent(20*time.Minute, m(88.0), None), // not below 90 - 2
			sent(25*time.Minute, m(87.9), Resolved),
		}},
		{"hysteresis: below the threshold does not fire", []step{
			sent(0, m(89.99), None),
			sent(5*time.Minute, m(88), None),
			sent(10*time.Minute, m(89), None),
		}},
		{"hysteresis: refires at the threshold, not below", []step{
			sent(0, m(92), Firing),
			sent(5*time.Minute, m(80), Resolved),
			sent(10*time.Minute, m(89), None),
			sent(15*time.Minute, m(90), Firing),
		}},
		{"check error reported once, and its recovery", []step{
			sent(0, Failed(false), None),
			sent(5*time.Minute, Errored(errSSH), CheckFailed),
			sent(10*time.Minute, Errored(errSSH), None),
			sent(7*time.Hour, Errored(errors.New("timeout")), None),
			sent(7*time.Hour+5*time.Minute, Failed(false), CheckRecovered),
			sent(7*time.Hour+10*time.Minute, Failed(false), None),
		}},
		{"error while firing: no reminder, no resolve; recovery then reminder", []step{
			sent(0, Failed(true), Firing),
			sent(5*time.Minute, Errored(errSSH), CheckFailed),
			sent(7*time.Hour, Errored(errSSH), None),
			sent(7*time.Hour+5*time.Minute, Failed(true), CheckRecovered),
			sent(7*time.Hour+10*time.Minute, Failed(true), Repeat),
		}},
		{"recovery that changes the result says so instead", []step{
			sent(0, Failed(true), Firing),
			sent(5*time.Minute, Errored(errSSH), CheckFailed),
			sent(10*time.Minute, Failed(false), Resolved),
			sent(15*time.Minute, Errored(errSSH), CheckFailed),
			sent(20*time.Minute, Failed(true), Firing),
			sent(25*time.Minute, Failed(true), None),
		}},
		{"NaN is an error, not a resolve", []step{
			sent(0, m(95), Firing),
			sent(5*time.Minute, m(math.NaN()), CheckFailed),
			sent(10*time.Minute, m(95), CheckRecovered),
		}},
		{"unsent firing is not recorded and comes again", []step{
			lost(0, Failed(true), Firing),
			lost(5*time.Minute, Failed(true), Firing),
			sent(10*time.Minute, Failed(true), Firing),
			sent(15*time.Minute, Failed(true), None),
		}},
		{"unsent repeat comes again at the next step", []step{
			sent(0, Failed(true), Firing),
			lost(6*time.Hour, Failed(true), Repeat),
			sent(6*time.Hour+5*time.Minute, Failed(true), Repeat),
			sent(12*time.Hour, Failed(true), None), // counted from the sent one
			sent(12*time.Hour+5*time.Minute, Failed(true), Repeat),
		}},
		{"unsent resolve comes again", []step{
			sent(0, Failed(true), Firing),
			lost(5*time.Minute, Failed(false), Resolved),
			sent(10*time.Minute, Failed(false), Resolved),
			sent(15*time.Minute, Failed(false), None),
		}},
		{"unsent check failure comes again", []step{
			lost(0, Errored(errSSH), CheckFailed),
			sent(5*time.Minute, Errored(errSSH), CheckFailed),
			sent(10*time.Minute, Errored(errSSH), None),
			lost(15*time.Minute, Failed(false), CheckRecovered),
			sent(20*time.Minute, Failed(false), CheckRecovered),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st State
			for i, s := range tc.steps {
				next, n := Step(st, s.obs, policy, t0.Add(s.at))
				if n != s.want {
					t.Fatalf("step %d (+%v, %+v): got %v, want %v", i, s.at, s.obs, n, s.want)
				}
				if n == None || !s.unsent {
					st = next
				}
			}
		})
	}
}

func TestStepNoRepeatPolicy(t *testing.T) {
	st, n := Step(State{}, Failed(true), Policy{}, t0)
	if n != Firing {
		t.Fatalf("got %v", n)
	}
	for _, d := range []time.Duration{time.Hour, 24 * time.Hour, 365 * 24 * time.Hour} {
		if _, n := Step(st, Failed(true), Policy{}, t0.Add(d)); n != None {
			t.Errorf("+%v: %v with Repeat 0, want None", d, n)
		}
	}
}

func TestStepNegativeHysteresis(t *testing.T) {
	st, _ := Step(State{}, Measured(90, 90), Policy{Hysteresis: -5}, t0)
	if _, n := Step(st, Measured(89.9, 90), Policy{Hysteresis: -5}, t0.Add(time.Minute)); n != Resolved {
		t.Errorf("got %v, want Resolved (negative hysteresis counts as zero)", n)
	}
}

func TestStepState(t *testing.T) {
	p := Policy{Repeat: time.Hour, Hysteresis: 2}
	prev := State{}
	st, _ := Step(prev, Measured(93.5, 90), p, t0)
	want := State{Firing: true, Since: t0, LastNotified: t0, LastValue: 93.5}
	if st != want {
		t.Errorf("after firing: %+v, want %+v", st, want)
	}
	if prev != (State{}) {
		t.Error("Step changed its input")
	}
	at := t0.Add(90 * time.Minute)
	st, _ = Step(st, Measured(91, 90), p, at)
	want = State{Firing: true, Since: t0, LastNotified: at, LastValue: 91}
	if st != want {
		t.Errorf("after repeat: %+v, want %+v", st, want)
	}
	at2 := at.Add(time.Minute)
	st, _ = Step(st, Errored(errSSH), p, at2)
	want = State{Firing: true, Since: t0, LastNotified: at, LastValue: 91,
		Erroring: true, ErrorSince: at2, LastError: errSSH.Error()}
	if st != want {
		t.Errorf("after error: %+v, want %+v", st, want)
	}
	at3 := at2.Add(time.Minute)
	st, _ = Step(st, Measured(10, 90), p, at3)
	want = State{Firing: false, Since: at3, LastNotified: at3, LastValue: 10}
	if st != want {
		t.Errorf("after resolve: %+v, want %+v", st, want)
	}
}

func TestErroredNil(t *testing.T) {
	if _, n := Step(State{}, Errored(nil), Policy{}, t0); n != CheckFailed {
		t.Errorf("Errored(nil) gave %v, want CheckFailed", n)
	}
}

func TestNotificationString(t *testing.T) {
	for n, want := range map[Notification]string{
		None: "none", Firing: "firing", Repeat: "repeat", Resolved: "resolved",
		CheckFailed: "check-failed", CheckRecovered: "check-recovered",
		Notification(42): "Notification(42)", Notification(-1): "Notification(-1)",
	} {
		if got := n.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(n), got, want)
		}
	}
}

func TestCheckName(t *testing.T) {
	if got := CheckName("disk", "xenbuilder2", "/var/lib/mock"); got != "disk:xenbuilder2:/var/lib/mock" {
		t.Errorf("CheckName = %q", got)
	}
	if got := CheckName("connections"); got != "connections" {
		t.Errorf("CheckName = %q", got)
	}
}

func TestTracker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now() // synctest's clock
		tr := NewTracker(Policy{Repeat: 6 * time.Hour, Hysteresis: 2}, time.Now)
		disk := CheckName("disk", "xenbuilder2", "/var/lib/mock")
		stale := CheckName("stale", "ppc3")

		if _, ok := tr.State(disk); ok {
			t.Fatal("state before any observation")
		}
		p := tr.Observe(disk, Measured(50, 90))
		if p.Notification != None || p.Commit() {
			t.Fatalf("healthy: %v, and Commit of None reported true", p.Notification)
		}
		if st, ok := tr.State(disk); !ok || st.LastValue != 50 {
			t.Fatalf("a None step is recorded at once: %+v %v", st, ok)
		}

		time.Sleep(5 * time.Minute)
		p = tr.Observe(disk, Measured(95, 90))
		if p.Notification != Firing || p.Check != disk || p.Prev.Firing || !p.Next.Firing {
			t.Fatalf("Observe = %+v", p)
		}
		if st, _ := tr.State(disk); st.Firing {
			t.Fatal("firing recorded before Commit")
		}
		// The send failed: not committed, so it comes again.
		time.Sleep(5 * time.Minute)
		p = tr.Observe(disk, Measured(95, 90))
		if p.Notification != Firing {
			t.Fatalf("after an unsent Firing: %v, want Firing again", p.Notification)
		}
		if !p.Commit() {
			t.Fatal("Commit failed")
		}
		if p.Commit() {
			t.Error("a second Commit reported true")
		}
		if got := tr.Firing(); len(got) != 1 || got[0] != disk {
			t.Errorf("Firing() = %v", got)
		}
		if st, _ := tr.State(disk); !st.Firing || !st.Since.Equal(start.Add(10*time.Minute)) {
			t.Errorf("state = %+v", st)
		}

		// Other checks are independent.
		if p := tr.Observe(stale, Failed(true)); p.Notification != Firing || !p.Commit() {
			t.Fatalf("stale: %v", p.Notification)
		}
		if got := strings.Join(tr.Firing(), ","); got != disk+","+stale {
			t.Errorf("Firing() = %v", got)
		}

		time.Sleep(time.Hour)
		if p := tr.Observe(disk, Measured(89, 90)); p.Notification != None {
			t.Fatalf("within hysteresis: %v", p.Notification)
		}
		time.Sleep(5 * time.Hour)
		p = tr.Observe(disk, Measured(91, 90))
		if p.Notification != Repeat {
			t.Fatalf("after 6h: %v, want Repeat", p.Notification)
		}
		p.Commit()
		time.Sleep(time.Minute)
		p = tr.Observe(disk, Measured(50, 90))
		if p.Notification != Resolved || !p.Commit() {
			t.Fatalf("cleared: %v", p.Notification)
		}
		if d := p.Next.Since.Sub(p.Prev.Since); d != 6*time.Hour+time.Minute {
			t.Errorf("failure lasted %v by Prev/Next, want 6h1m", d)
		}

		tr.Forget(stale)
		if _, ok := tr.State(stale); ok {
			t.Error("Forget kept the state")
		}
	})
}

func TestTrackerStaleCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := NewTracker(Policy{Repeat: time.Hour}, time.Now)

		// A pending for a check that got recorded meanwhile is stale.
		old := tr.Observe("a", Failed(true))
		if p := tr.Observe("a", Failed(true)); !p.Commit() {
			t.Fatal("Commit failed")
		}
		if old.Commit() {
			t.Error("a stale Pending (new check) committed")
		}

		// Same for an existing check.
		time.Sleep(2 * time.Hour)
		old = tr.Observe("a", Failed(true))
		if old.Notification != Repeat {
			t.Fatalf("got %v", old.Notification)
		}
		time.Sleep(time.Minute)
		if p := tr.Observe("a", Failed(false)); p.Notification != Resolved || !p.Commit() {
			t.Fatal("resolve failed")
		}
		if old.Commit() {
			t.Error("a stale Repeat overwrote the resolve")
		}
		if st, _ := tr.State("a"); st.Firing {
			t.Error("state is firing after the resolve")
		}

		// And for a check forgotten and observed again.
		old = tr.Observe("b", Failed(true))
		old.Commit()
		time.Sleep(2 * time.Hour)
		old = tr.Observe("b", Failed(false))
		tr.Forget("b")
		if p := tr.Observe("b", Failed(false)); p.Notification != None {
			t.Fatalf("got %v", p.Notification)
		}
		if old.Commit() {
			t.Error("a Pending from before Forget committed")
		}

		var zero Pending
		if zero.Commit() {
			t.Error("the zero Pending committed")
		}
	})
}

func TestTrackerConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := NewTracker(Policy{Repeat: time.Hour}, time.Now)
		var wg sync.WaitGroup
		var mu sync.Mutex
		fired := map[string]int{}
		for w := range 16 {
			name := fmt.Sprint("disk:host", w, ":/var/lib/mock")
			wg.Go(func() {
				for i := range 100 {
					p := tr.Observe(name, Measured(float64(90+i%2), 90))
					if p.Notification != None {
						mu.Lock()
						fired[name]++
						mu.Unlock()
						p.Commit()
					}
					tr.Firing()
					tr.State(name)
				}
			})
		}
		wg.Go(func() {
			for range 100 {
				time.Sleep(time.Second)
			}
		})
		wg.Wait()
		if len(fired) != 16 {
			t.Fatalf("%d checks fired, want 16", len(fired))
		}
		for name, n := range fired {
			if n != 1 {
				t.Errorf("%s notified %d times in under an hour, want once", name, n)
			}
		}
	})
}
