package commands

// The fakes the package's tests share: the Koji database, the ACL, the
// fleet, an Output and a log buffer.

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/kojidb"
)

// fakeDB is an in-memory KojiDB.
type fakeDB struct {
	mu    sync.Mutex
	hosts []kojidb.Host
	down  bool
	hang  bool // Hosts blocks until its context ends
	sets  int
	// deny makes every write fail as kojidb does when koji.user may not
	// edit hosts.
	deny *kojidb.PermissionError

	backends []kojidb.Backend
}

func (f *fakeDB) Hosts(ctx context.Context) ([]kojidb.Host, error) {
	f.mu.Lock()
	hang := f.hang
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, fmt.Errorf("hosts: %w", ctx.Err())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, fmt.Errorf("hosts: %w", kojidb.ErrUnavailable)
	}
	return append([]kojidb.Host(nil), f.hosts...), nil
}

func (f *fakeDB) find(name string) (int, error) {
	for i, h := range f.hosts {
		if h.Name == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: %s", kojidb.ErrNoHost, name)
}

func (f *fakeDB) SetCapacity(ctx context.Context, host string, c float64) (kojidb.Host, kojidb.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !(c > 1) || math.IsInf(c, 0) {
		return kojidb.Host{}, kojidb.Host{}, kojidb.ErrBadCapacity
	}
	if f.deny != nil {
		return kojidb.Host{}, kojidb.Host{}, fmt.Errorf("kojidb: set capacity: %w", f.deny)
	}
	i, err := f.find(host)
	if err != nil {
		return kojidb.Host{}, kojidb.Host{}, err
	}
	before := f.hosts[i]
	f.hosts[i].Capacity = c
	f.sets++
	return before, f.hosts[i], nil
}

func (f *fakeDB) SetEnabled(ctx context.Context, host string, enabled bool, comment string) (kojidb.Host, kojidb.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.find(host)
	if err != nil {
		return kojidb.Host{}, kojidb.Host{}, err
	}
	if f.deny != nil {
		return kojidb.Host{}, kojidb.Host{}, fmt.Errorf("kojidb: set enabled: %w", f.deny)
	}
	before := f.hosts[i]
	f.hosts[i].Enabled = enabled
	if comment != "" {
		f.hosts[i].Comment = comment
	}
	f.sets++
	return before, f.hosts[i], nil
}

func (f *fakeDB) ActiveBuildroots(ctx context.Context, host string) ([]int64, error) { return nil, nil }

func (f *fakeDB) Backends(ctx context.Context, role string, older time.Duration) ([]kojidb.Backend, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []kojidb.Backend
	for _, b := range f.backends {
		if b.User == role {
			out = append(out, b)
		}
	}
	return out, nil
}

func (f *fakeDB) TerminateBackends(ctx context.Context, role string, older time.Duration, shown []kojidb.Backend) (terminated, skipped []kojidb.Backend, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range shown {
		i := slices.IndexFunc(f.backends, func(b kojidb.Backend) bool {
			return b.User == role && b.PID == s.PID && b.BackendStart.Equal(s.BackendStart)
		})
		if i < 0 {
			skipped = append(skipped, s)
			continue
		}
		terminated = append(terminated, s)
		f.backends = slices.Delete(f.backends, i, i+1)
	}
	f.sets++
	return terminated, skipped, nil
}

// fakeACL allows group members to run everything and anyone logged in to
// run read-only commands.
type fakeACL struct{ members map[string]bool }

func (a fakeACL) Authorize(ctx context.Context, c acl.Caller, command string, readOnly bool) acl.Decision {
	user := c.FASUser
	if user == "" {
		user = c.Account
	}
	switch {
	case user == "":
		return acl.Decision{Reason: "you are not logged in to services; identify with NickServ first", Rule: "test"}
	case readOnly || a.members[user]:
		return acl.Decision{Allowed: true, FASUser: user, Rule: "test"}
	}
	return acl.Decision{FASUser: user, Rule: "test", Required: []string{"sysadmin-build"},
		Reason: command + " needs membership in sysadmin-build"}
}

// recorder is an Output that keeps every reply.
type recorder struct {
	mu       sync.Mutex
	replies  []string
	messages []reply.Message
}

func (r *recorder) Send(m reply.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies = append(r.replies, m.String())
	r.messages = append(r.messages, m)
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.replies, "\n")
}

// fakeFleet is the Fleet of this package's tests. Run answers from run (an
// empty success when run is nil). Services are running until stopped; a
// broken one fails to start; when hold is set, a restart waits until hold
// is closed or its context ends. Every call is recorded: a command as its
// argv joined by spaces, a service action as "host action service".
type fakeFleet struct {
	run  func(ctx context.Context, host string, argv []string) (fleet.Result, error)
	hold chan struct{}

	mu      sync.Mutex
	calls   []string
	stopped map[string]bool // host/service
	broken  map[string]bool // host/service
}

func (f *fakeFleet) Run(ctx context.Context, host string, argv []string, _ fleet.RunOptions) (fleet.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, strings.Join(argv, " "))
	f.mu.Unlock()
	if f.run == nil {
		return fleet.Result{}, nil
	}
	return f.run(ctx, host, argv)
}

func (f *fakeFleet) Service(ctx context.Context, host, action, service string) (fleet.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, host+" "+action+" "+service)
	f.mu.Unlock()
	if action == "restart" && f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return fleet.Result{ExitCode: -1}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := host + "/" + service
	switch action {
	case "stop":
		f.setStopped(host, service)
	case "start", "restart":
		if f.broken[key] {
			return fleet.Result{ExitCode: 1, Stderr: "failed to start"}, nil
		}
		delete(f.stopped, key)
	case "is-active":
		if f.stopped[key] {
			return fleet.Result{ExitCode: 3}, nil
		}
	}
	return fleet.Result{}, nil
}

func (f *fakeFleet) Each(ctx context.Context, hosts []string, fn func(ctx context.Context, host string) error) map[string]error {
	out := map[string]error{}
	for _, h := range hosts {
		out[h] = fn(ctx, h)
	}
	return out
}

// DiskUsage says every path is a half-full 100 MiB tmpfs.
func (f *fakeFleet) DiskUsage(ctx context.Context, host string, paths []string) ([]fleet.Usage, error) {
	var out []fleet.Usage
	for _, p := range paths {
		out = append(out, fleet.Usage{Path: p, Mount: p, Filesystem: "tmpfs", Size: 100 << 20, Used: 50 << 20, Avail: 50 << 20, Percent: 50})
	}
	return out, nil
}

// setStopped marks service on host as stopped; f.mu is held.
func (f *fakeFleet) setStopped(host, service string) {
	if f.stopped == nil {
		f.stopped = map[string]bool{}
	}
	f.stopped[host+"/"+service] = true
}

// stop stops service on host before the test runs.
func (f *fakeFleet) stop(host, service string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setStopped(host, service)
}

// breakService makes service on host fail to start.
func (f *fakeFleet) breakService(host, service string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken == nil {
		f.broken = map[string]bool{}
	}
	f.broken[host+"/"+service] = true
}

func (f *fakeFleet) isStopped(host, service string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped[host+"/"+service]
}

// count is how many times call was made.
func (f *fakeFleet) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == call {
			n++
		}
	}
	return n
}

// ran returns the calls so far that start with prefix.
func (f *fakeFleet) ran(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// allCalls returns every call so far.
func (f *fakeFleet) allCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// logBuffer collects a logger's records.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
