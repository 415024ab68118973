package outage

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/commands/state"
)

// Drafts keeps outage drafts for `outage draft` and `outage show`, the
// HTTP server's /drafts/<token> and the watcher. Kept is the one the bot
// runs with; Store, in memory, serves tests and a dispatcher built
// without a state store.
type Drafts interface {
	// New stores a copy of d under a new id and a new random token and
	// returns it (see Store.New).
	New(d Draft) (Draft, error)
	// Get returns the draft with the id ("o3"), and whether it is kept;
	// an error when the drafts cannot be read (the store is away).
	Get(id string) (Draft, bool, error)
	// ByToken returns the draft named token (exactly), and whether it is
	// kept; an error when the drafts cannot be read.
	ByToken(token string) (Draft, bool, error)
	// List returns the kept drafts, newest first; an error when they
	// cannot be read.
	List() ([]Draft, error)
}

var (
	_ Drafts = (*Store)(nil)
	_ Drafts = (*Kept)(nil)
)

// Records is where Kept keeps the drafts: the bot's state store.
type Records interface {
	NewDraft(ctx context.Context, token string, created time.Time, payload string, keep int) (int64, error)
	Draft(ctx context.Context, id int64) (state.DraftRecord, bool, error)
	DraftByToken(ctx context.Context, token string) (state.DraftRecord, bool, error)
	Drafts(ctx context.Context) ([]state.DraftRecord, error)
}

// recordTimeout bounds one read or write of the state store.
const recordTimeout = 15 * time.Second

// Kept keeps the drafts in the bot's state store, so that a restarted bot,
// or a replica taking over, still has them, and every process of the
// store sees the same. It behaves as Store does: ids "o1", "o2", ... (from
// the store's sequence, never repeated), a random token each, the newest
// max kept. The store's failures are returned (a draft whose record
// cannot be decoded is logged and left out).
type Kept struct {
	rec Records
	max int
	now func() time.Time
	log *slog.Logger
}

// NewKept returns the drafts kept in rec, at most max (DefaultMaxDrafts
// when max <= 0). now is the clock for a draft's Created when that is
// zero (nil: time.Now); log receives the store's failures (nil: none).
func NewKept(rec Records, max int, now func() time.Time, log *slog.Logger) *Kept {
	if max <= 0 {
		max = DefaultMaxDrafts
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Kept{rec: rec, max: max, now: now, log: log}
}

// keptDraft is a draft as the store keeps it (its id and token are
// columns of their own).
type keptDraft struct {
	Planned    bool          `json:"planned"`
	Service    string        `json:"service"`
	Start      time.Time     `json:"start"`
	Duration   time.Duration `json:"duration"`
	Reason     string        `json:"reason"`
	Affected   []string      `json:"affected,omitempty"`
	Unaffected []string      `json:"unaffected,omitempty"`
	TicketURL  string        `json:"ticket_url,omitempty"`
	To         []string      `json:"to,omitempty"`
	Contacts   []string      `json:"contacts,omitempty"`
	CreatedBy  string        `json:"created_by"`
	Created    time.Time     `json:"created"`
}

// New stores a copy of d, as Store.New does, in the state store.
func (k *Kept) New(d Draft) (Draft, error) {
	if err := d.Validate(); err != nil {
		return Draft{}, err
	}
	d = d.clone()
	d.Start = d.Start.UTC()
	if d.Created.IsZero() {
		d.Created = k.now()
	}
	d.Created = d.Created.UTC()
	payload, err := json.Marshal(keptDraft{Planned: d.Planned, Service: d.Service, Start: d.Start, Duration: d.Duration,
		Reason: d.Reason, Affected: d.Affected, Unaffected: d.Unaffected, TicketURL: d.TicketURL, To: d.To,
		Contacts: d.Contacts, CreatedBy: d.CreatedBy, Created: d.Created})
	if err != nil {
		return Draft{}, fmt.Errorf("encoding the outage draft: %w", err)
	}
	d.Token = NewToken()
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	id, err := k.rec.NewDraft(ctx, d.Token, d.Created, string(payload), k.max)
	if err != nil {
		return Draft{}, err
	}
	d.ID = "o" + strconv.FormatInt(id, 10)
	return d, nil
}

// decode makes the draft of r; ok is false (and it is logged) when its
// payload cannot be read.
func (k *Kept) decode(r state.DraftRecord) (Draft, bool) {
	var p keptDraft
	if err := json.Unmarshal([]byte(r.Payload), &p); err != nil {
		k.log.Error("reading an outage draft", "id", r.ID, "error", err)
		return Draft{}, false
	}
	return Draft{ID: "o" + strconv.FormatInt(r.ID, 10), Token: r.Token, Planned: p.Planned, Service: p.Service,
		Start: p.Start.UTC(), Duration: p.Duration, Reason: p.Reason, Affected: p.Affected, Unaffected: p.Unaffected,
		TicketURL: p.TicketURL, To: p.To, Contacts: p.Contacts, CreatedBy: p.CreatedBy, Created: p.Created.UTC()}, true
}

// one decodes what a lookup of the store found.
func (k *Kept) one(r state.DraftRecord, ok bool, err error) (Draft, bool, error) {
	if err != nil {
		return Draft{}, false, err
	}
	if !ok {
		return Draft{}, false, nil
	}
	d, ok := k.decode(r)
	return d, ok, nil
}

// Get returns the draft with the id ("o3"; case and surrounding space are
// ignored), and whether it is still kept.
func (k *Kept) Get(id string) (Draft, bool, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	digits, found := strings.CutPrefix(id, "o")
	n, err := strconv.ParseInt(digits, 10, 64)
	if !found || err != nil || n <= 0 || strconv.FormatInt(n, 10) != digits {
		return Draft{}, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	return k.one(k.rec.Draft(ctx, n))
}

// ByToken returns the draft whose Token is token (exactly: tokens are
// case-sensitive), and whether it is still kept. An empty token matches
// nothing.
func (k *Kept) ByToken(token string) (Draft, bool, error) {
	if token == "" {
		return Draft{}, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	return k.one(k.rec.DraftByToken(ctx, token))
}

// List returns the kept drafts, newest first.
func (k *Kept) List() ([]Draft, error) {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	recs, err := k.rec.Drafts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Draft, 0, len(recs))
	for _, r := range recs {
		if d, ok := k.decode(r); ok {
			out = append(out, d)
		}
	}
	return out, nil
}
