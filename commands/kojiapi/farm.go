package kojiapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojidb"
)

// Farm is Koji's build hosts as the commands see them, read and changed
// through the hub's API with the calls the koji CLI makes: listHosts and
// getHost (with getLastHostUpdate on hubs whose hosts carry no update_ts),
// editHost, enableHost, disableHost and listBuildroots. It returns the
// same kojidb.Host values, with the same before/after semantics, as
// kojidb.DB, so that the replies do not depend on the path. It is safe for
// concurrent use.
type Farm struct {
	c    *Client
	opts FarmOptions
}

// FarmOptions configures NewFarm.
type FarmOptions struct {
	// ActAsCaller (koji.hub.act_as_caller) is the Client's: writes are
	// made in the caller's session (ForCaller), and a refusal names the
	// caller's Koji user.
	ActAsCaller bool
	// Now is the clock the check-in ages are computed against; nil is
	// time.Now.
	Now func() time.Time
	// WebURL (koji.weburl) is the hub's web UI, e.g.
	// https://koji.fedoraproject.org/koji, for links to tasks; empty
	// means no links.
	WebURL string
}

// NewFarm returns the hosts of the hub c talks to. The check-in ages are
// computed against the bot's clock (the hub's API tells no time), so the
// bot's and the hub's clocks must agree (NTP).
func NewFarm(c *Client, opts FarmOptions) *Farm {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Farm{c: c, opts: opts}
}

// callerKey is the context key of the caller a write is made for.
type callerKey struct{}

// ForCaller returns ctx carrying the FAS user a command runs for: with
// koji.hub.act_as_caller the Farm's writes are made in that user's session
// (Client.As), otherwise in the bot's.
func ForCaller(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, callerKey{}, user)
}

// callerOf is the user ForCaller put in ctx, or "".
func callerOf(ctx context.Context) string {
	u, _ := ctx.Value(callerKey{}).(string)
	return u
}

// PermissionError is the hub's ActionNotAllowed for a call that needs a
// permission (host for the host edits, tag or the tag's own for tagBuild):
// the Koji user the call was made as lacks it. Nothing was changed.
type PermissionError struct {
	// Perm is the permission the call needs, e.g. "host".
	Perm string
	// Caller is the FAS user whose session made the call
	// (koji.hub.act_as_caller), "" for the bot's own.
	Caller string
	// Fault is the hub's refusal.
	Fault *Fault
}

// Reply is the caller's message, without the "error:" prefix.
func (e *PermissionError) Reply() string {
	if e.Caller != "" {
		return fmt.Sprintf("Koji user %s lacks the %s permission (Koji: %s); nothing was changed", e.Caller, e.Perm, e.Fault.Message())
	}
	return fmt.Sprintf("kojibot's Koji user lacks the %s permission (Koji: %s); nothing was changed", e.Perm, e.Fault.Message())
}

// Error is Reply.
func (e *PermissionError) Error() string { return e.Reply() }

// Unwrap returns the fault.
func (e *PermissionError) Unwrap() error { return e.Fault }

// RefusedError is any other fault of the hub to a call of a command: Koji
// refused it, for the reason the fault gives.
type RefusedError struct {
	// Op says what was asked, e.g. "editHost ppc3.fedora.redhat.com".
	Op    string
	Fault *Fault
}

// Error names the call and the hub's reason.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("Koji refused %s: %s", e.Op, e.Fault.Message())
}

// Unwrap returns the fault.
func (e *RefusedError) Unwrap() error { return e.Fault }

// refusal turns a fault of call op, made for caller, into a
// PermissionError (ActionNotAllowed, naming perm) or a RefusedError; any
// other error, and a refused login (ErrLogin), is returned as it is.
func refusal(err error, op, perm, caller string) error {
	var f *Fault
	if !errors.As(err, &f) || errors.Is(err, ErrLogin) {
		return err
	}
	if f.Code == FaultActionNotAllowed && perm != "" {
		return &PermissionError{Perm: perm, Caller: caller, Fault: f}
	}
	return &RefusedError{Op: op, Fault: f}
}

// Hosts returns every build host (listHosts), sorted by name.
func (f *Farm) Hosts(ctx context.Context) ([]kojidb.Host, error) {
	v, err := f.c.Call(ctx, "listHosts")
	if err != nil {
		return nil, refusal(err, "listHosts", "", "")
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("kojihub: listHosts answered %T, not a list", v)
	}
	hosts := make([]kojidb.Host, 0, len(list))
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("kojihub: listHosts answered a %T in its list", item)
		}
		h, err := f.host(ctx, m)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	slices.SortFunc(hosts, func(a, b kojidb.Host) int { return strings.Compare(a.Name, b.Name) })
	return hosts, nil
}

// Host returns the host with exactly that name (getHost), or an error
// wrapping kojidb.ErrNoHost.
func (f *Farm) Host(ctx context.Context, name string) (kojidb.Host, error) {
	v, err := f.c.Call(ctx, "getHost", name)
	if err != nil {
		return kojidb.Host{}, refusal(err, "getHost "+name, "", "")
	}
	if v == nil {
		return kojidb.Host{}, fmt.Errorf("%w %q", kojidb.ErrNoHost, name)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return kojidb.Host{}, fmt.Errorf("kojihub: getHost answered %T, not a struct", v)
	}
	return f.host(ctx, m)
}

// host reads a host struct of listHosts or getHost. Hubs older than Koji
// 1.33 send no update_ts: the check-in is then asked with
// getLastHostUpdate.
func (f *Farm) host(ctx context.Context, m map[string]any) (kojidb.Host, error) {
	var h kojidb.Host
	var bad []string
	num := func(key string) float64 {
		switch x := m[key].(type) {
		case float64:
			return x
		case int64:
			return float64(x)
		}
		bad = append(bad, key)
		return 0
	}
	str := func(key string) string {
		switch x := m[key].(type) {
		case string:
			return x
		case nil:
			return ""
		}
		bad = append(bad, key)
		return ""
	}
	flag := func(key string) bool {
		x, ok := m[key].(bool)
		if !ok {
			bad = append(bad, key)
		}
		return x
	}
	id, ok := m["id"].(int64)
	if !ok {
		bad = append(bad, "id")
	}
	h.ID = id
	h.Name = str("name")
	h.Arches = str("arches")
	h.Capacity = num("capacity")
	h.TaskLoad = num("task_load")
	h.Ready = flag("ready")
	h.Enabled = flag("enabled")
	h.Description = str("description")
	h.Comment = str("comment")
	if len(bad) > 0 {
		return kojidb.Host{}, fmt.Errorf("kojihub: the hub's host %q has no valid %s", h.Name, strings.Join(bad, ", "))
	}
	ts, has := m["update_ts"]
	if !has {
		var err error
		if ts, err = f.c.Call(ctx, "getLastHostUpdate", h.ID, Kwargs{"ts": true}); err != nil {
			return kojidb.Host{}, refusal(err, "getLastHostUpdate", "", "")
		}
	}
	switch x := ts.(type) {
	case nil:
	case float64:
		sec, frac := math.Modf(x)
		h.LastCheckin = time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
	case int64:
		h.LastCheckin = time.Unix(x, 0).UTC()
	default:
		return kojidb.Host{}, fmt.Errorf("kojihub: the hub's host %q has an update_ts of type %T", h.Name, ts)
	}
	if !h.LastCheckin.IsZero() {
		h.CheckinAge = max(f.opts.Now().Sub(h.LastCheckin), 0)
	}
	return h, nil
}

// SetCapacity sets host's capacity with editHost(host, capacity=…) and
// returns the host before and after, read with getHost. capacity must be
// finite and greater than 1, else kojidb.ErrBadCapacity is returned before
// anything is sent. When the host already has that capacity nothing is
// sent and after equals before (Koji's "No changes made").
func (f *Farm) SetCapacity(ctx context.Context, host string, capacity float64) (before, after kojidb.Host, err error) {
	if math.IsNaN(capacity) || math.IsInf(capacity, 0) || capacity <= 1 {
		return kojidb.Host{}, kojidb.Host{}, fmt.Errorf("kojihub: set capacity of %s to %v: %w", host, capacity, kojidb.ErrBadCapacity)
	}
	before, err = f.Host(ctx, host)
	if err != nil {
		return kojidb.Host{}, kojidb.Host{}, err
	}
	if before.Capacity == capacity {
		return before, before, nil
	}
	check := func(ctx context.Context) (bool, error) {
		h, err := f.Host(ctx, host)
		return err == nil && h.Capacity == capacity, err
	}
	if err := f.write(ctx, check, "host", "editHost", host, Kwargs{"capacity": capacity}); err != nil {
		return kojidb.Host{}, kojidb.Host{}, err
	}
	after, err = f.Host(ctx, host)
	if err != nil {
		return kojidb.Host{}, kojidb.Host{}, err
	}
	return before, after, nil
}

// SetEnabled enables (enableHost) or disables (disableHost) host and, when
// comment is not empty, then sets its comment with editHost(comment=…), as
// `koji disable-host --comment` does; it returns the host before and after.
// As the hub's own calls, enableHost and disableHost write a revision even
// when the host is already in that state, and editHost writes nothing when
// the comment is already that one. Callers tell what changed by comparing
// before and after.
func (f *Farm) SetEnabled(ctx context.Context, host string, enabled bool, comment string) (before, after kojidb.Host, err error) {
	before, err = f.Host(ctx, host)
	if err != nil {
		return kojidb.Host{}, kojidb.Host{}, err
	}
	method := "disableHost"
	if enabled {
		method = "enableHost"
	}
	// A lost answer is sent again only when the host is not in the state
	// yet: a revision that changes nothing is not worth a second one.
	check := func(ctx context.Context) (bool, error) {
		h, err := f.Host(ctx, host)
		return err == nil && h.Enabled == enabled, err
	}
	if err := f.write(ctx, check, "host", method, host); err != nil {
		return kojidb.Host{}, kojidb.Host{}, err
	}
	if comment != "" {
		check := func(ctx context.Context) (bool, error) {
			h, err := f.Host(ctx, host)
			return err == nil && h.Comment == comment, err
		}
		if err := f.write(ctx, check, "host", "editHost", host, Kwargs{"comment": comment}); err != nil {
			return kojidb.Host{}, kojidb.Host{}, err
		}
	}
	after, err = f.Host(ctx, host)
	if err != nil {
		return kojidb.Host{}, kojidb.Host{}, err
	}
	return before, after, nil
}

// write sends method, a write needing permission perm, in the session of
// the caller in ctx (ForCaller), and turns its faults into
// PermissionError or RefusedError.
func (f *Farm) write(ctx context.Context, check Check, perm, method string, args ...any) error {
	caller := callerOf(ctx)
	k := f.c.As(caller)
	if !f.opts.ActAsCaller {
		caller = ""
	}
	_, err := k.CallWrite(ctx, check, method, args...)
	op := method
	if len(args) > 0 {
		if s, ok := args[0].(string); ok {
			op += " " + s
		}
	}
	return refusal(err, op, perm, caller)
}

// ActiveBuildroots returns the ids of host's buildroots that Koji still
// uses, listBuildroots(hostID=…, state=[INIT, WAITING, BUILDING]), in
// ascending order. An unknown host is an error wrapping kojidb.ErrNoHost.
func (f *Farm) ActiveBuildroots(ctx context.Context, host string) ([]int64, error) {
	h, err := f.Host(ctx, host)
	if err != nil {
		return nil, err
	}
	v, err := f.c.Call(ctx, "listBuildroots", Kwargs{"hostID": h.ID, "state": []any{0, 1, 2}})
	if err != nil {
		return nil, refusal(err, "listBuildroots", "", "")
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("kojihub: listBuildroots answered %T, not a list", v)
	}
	ids := make([]int64, 0, len(list))
	for _, item := range list {
		m, _ := item.(map[string]any)
		id, ok := m["id"].(int64)
		if !ok {
			return nil, fmt.Errorf("kojihub: listBuildroots answered a buildroot without an id")
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// TaskURL is the page of task id on the hub's web UI (FarmOptions.WebURL),
// or "" without one.
func (f *Farm) TaskURL(id int64) string {
	if f.opts.WebURL == "" {
		return ""
	}
	return fmt.Sprintf("%s/taskinfo?taskID=%d", strings.TrimRight(f.opts.WebURL, "/"), id)
}

// Ping checks that the hub answers (getAPIVersion), for /healthz: a fault
// is an answer; a hub that cannot be reached, or a login that fails, is
// not.
func (f *Farm) Ping(ctx context.Context) error {
	_, err := f.c.Call(ctx, "getAPIVersion")
	var fault *Fault
	if errors.As(err, &fault) {
		return nil
	}
	return err
}
