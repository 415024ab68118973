package outage

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMaxDrafts is how many drafts a Store keeps when NewStore is given
// no positive bound.
const DefaultMaxDrafts = 100

// Store keeps drafts in memory (for tests, and a dispatcher with no state
// store; the bot keeps them in its state store: Kept), the newest DefaultMaxDrafts (or the bound
// given to NewStore); older ones are forgotten. Ids are short and readable:
// "o1", "o2", ... in the order the drafts were stored, for `outage show`;
// each draft also gets a random Token, the only name it is served under
// over HTTP (ByToken), since short ids are easy to guess. A Store is safe
// for concurrent use; the drafts it returns are copies.
type Store struct {
	mu     sync.Mutex
	max    int
	seq    int
	drafts []Draft // oldest first
	now    func() time.Time
}

// NewStore returns an empty Store that keeps at most max drafts
// (DefaultMaxDrafts when max <= 0). now is its clock, used for a draft's
// Created when that is zero; nil means time.Now.
func NewStore(max int, now func() time.Time) *Store {
	if max <= 0 {
		max = DefaultMaxDrafts
	}
	if now == nil {
		now = time.Now
	}
	return &Store{max: max, now: now}
}

// New stores a copy of d under a new id and returns it: ID and a new
// random Token set, Created set to the store's clock when zero, times in
// UTC. It fails, wrapping
// ErrInvalid, when d.Validate does. When the store is full the oldest draft
// is dropped.
func (s *Store) New(d Draft) (Draft, error) {
	if err := d.Validate(); err != nil {
		return Draft{}, err
	}
	d = d.clone()
	d.Start = d.Start.UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.Created.IsZero() {
		d.Created = s.now()
	}
	d.Created = d.Created.UTC()
	s.seq++
	d.ID = "o" + strconv.Itoa(s.seq)
	d.Token = NewToken()
	s.drafts = append(s.drafts, d)
	if n := len(s.drafts) - s.max; n > 0 {
		clear(s.drafts[:n])
		s.drafts = s.drafts[n:]
	}
	return d.clone(), nil
}

// Get returns the draft with the id ("o3"; case and surrounding space are
// ignored), and whether it is still kept.
func (s *Store) Get(id string) (Draft, bool, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.drafts) - 1; i >= 0; i-- {
		if s.drafts[i].ID == id {
			return s.drafts[i].clone(), true, nil
		}
	}
	return Draft{}, false, nil
}

// ByToken returns the draft whose Token is token (exactly: tokens are
// case-sensitive), and whether it is still kept. An empty token matches
// nothing.
func (s *Store) ByToken(token string) (Draft, bool, error) {
	if token == "" {
		return Draft{}, false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.drafts) - 1; i >= 0; i-- {
		if subtle.ConstantTimeCompare([]byte(s.drafts[i].Token), []byte(token)) == 1 {
			return s.drafts[i].clone(), true, nil
		}
	}
	return Draft{}, false, nil
}

// NewToken returns a new random draft token: 128 bits or more from
// crypto/rand, in lower-case base32 (URL-safe, no padding).
func NewToken() string { return strings.ToLower(rand.Text()) }

// Path is the path of the draft's HTTP page, "/drafts/<token>", to be put
// after http.public_url. It is "" for a draft that was never stored.
func (d Draft) Path() string {
	if d.Token == "" {
		return ""
	}
	return "/drafts/" + d.Token
}

// Where says where d can be read, the one rule for every reply and
// notification: its page under publicURL (http.public_url), named by its
// random token, never its short id; without a public URL (or for a draft
// never stored), the command that shows it, "<prefix> outage show <id>".
// isURL tells which.
func (d Draft) Where(publicURL, prefix string) (where string, isURL bool) {
	if publicURL != "" && d.Path() != "" {
		return strings.TrimRight(publicURL, "/") + d.Path(), true
	}
	return strings.TrimSpace(prefix + " outage show " + d.ID), false
}

// List returns the kept drafts, newest first.
func (s *Store) List() ([]Draft, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Draft, 0, len(s.drafts))
	for i := len(s.drafts) - 1; i >= 0; i-- {
		out = append(out, s.drafts[i].clone())
	}
	return out, nil
}

// AutoAuthor is the CreatedBy of drafts the watcher makes.
const AutoAuthor = "kojibot"

// ForFullMount returns the unplanned-outage draft made automatically when a
// shared mount (disk.shared_mounts) reaches disk.full_percent: the Koji
// build system is out from now, because mount on host is percent full.
// contacts (disk.escalate) become the contact persons and to (outage.to)
// the recipients. The draft is not stored.
func ForFullMount(mount string, percent float64, host string, now time.Time, contacts, to []string) Draft {
	return ForFillingMount(mount, percent, "", host, now, contacts, to)
}

// ForFillingMount is ForFullMount with the mount's trend (for example
// "+2.1%/h, full in about 1 h 25 min") said after its fill; an empty trend
// says nothing more.
func ForFillingMount(mount string, percent float64, trend, host string, now time.Time, contacts, to []string) Draft {
	fill := formatPercent(percent) + " full"
	if trend != "" {
		fill += ", " + trend
	}
	reason := fmt.Sprintf("The shared mount %s on %s is %s. "+
		"Builds, tagging and repository regeneration that write to it fail until space is freed.",
		mount, host, fill)
	return Draft{
		Planned:   false,
		Service:   "Koji build system",
		Start:     now.UTC(),
		Reason:    reason,
		Affected:  affectedBy(mount),
		To:        cloneStrings(to),
		Contacts:  cloneStrings(contacts),
		CreatedBy: AutoAuthor,
		Created:   now.UTC(),
	}
}

// formatPercent writes a usage to one decimal: "93.5%", "100%".
func formatPercent(p float64) string {
	return strconv.FormatFloat(math.Round(p*10)/10, 'f', -1, 64) + "%"
}

// affectedBy lists what a full shared mount takes down, from what Fedora
// keeps on each of them.
func affectedBy(mount string) []string {
	m := strings.TrimRight(mount, "/")
	under := func(dir string) bool { return m == dir || strings.HasPrefix(m, dir+"/") }
	koji := "Koji build system (koji.fedoraproject.org): builds, tagging, repository regeneration"
	switch {
	case under("/mnt/koji"):
		return []string{koji, "composes and update pushes, which read and write Koji's storage"}
	case strings.Contains(m, "scratch"):
		return []string{koji, "Koji scratch builds"}
	case under("/pub/fedora"), under("/pub/epel"), under("/pub"):
		return []string{koji, "dl.fedoraproject.org and mirror synchronisation (" + m + ")"}
	}
	return []string{koji}
}
