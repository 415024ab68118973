package watch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/alerting"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/messaging"
	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/commands/watch/trend"
	"github.com/fedora-infra/kojibot/config"
)

// The real collaborators fit the interfaces.
var (
	_ DiskReader = (*fleet.Fleet)(nil)
	_ FarmDB     = (*kojidb.DB)(nil)
)

// t0 is when a synctest bubble's clock starts; the tests that move time run
// in one.
var t0 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeDisk answers df from a table of percentages by host and path.
type fakeDisk struct {
	mu      sync.Mutex
	percent map[string]map[string]float64 // host -> path -> percent
	err     map[string]error              // host -> error for the whole call
	calls   int
	block   bool // wait for the context to end, then fail
	running int  // calls in progress
	peak    int  // the most calls in progress at once
}

func newFakeDisk() *fakeDisk {
	return &fakeDisk{percent: map[string]map[string]float64{}, err: map[string]error{}}
}

func (f *fakeDisk) set(host, path string, p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.percent[host] == nil {
		f.percent[host] = map[string]float64{}
	}
	f.percent[host][path] = p
}

func (f *fakeDisk) fail(host string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.err, host)
	} else {
		f.err[host] = err
	}
}

func (f *fakeDisk) DiskUsage(ctx context.Context, host string, paths []string) ([]fleet.Usage, error) {
	f.mu.Lock()
	f.calls++
	f.running++
	f.peak = max(f.peak, f.running)
	block := f.block
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	if block {
		<-ctx.Done()
		return nil, fmt.Errorf("fleet: %s: %w", host, fleet.ErrTimeout)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err[host]; err != nil {
		return nil, err
	}
	var out []fleet.Usage
	var missing []string
	for _, p := range paths {
		v, ok := f.percent[host][p]
		if !ok {
			missing = append(missing, p)
			continue
		}
		out = append(out, fleet.Usage{Path: p, Mount: p, Filesystem: "tmpfs", Percent: v})
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("fleet: %s: df: cannot read %s: No such file or directory", host, strings.Join(missing, ", "))
	}
	return out, nil
}

// fakeDB is the Koji database: its hosts and connection count. Like kojidb,
// it computes each host's CheckinAge against its own now (when ownAge is set).
type fakeDB struct {
	mu          sync.Mutex
	ownAge      bool
	hosts       []kojidb.Host
	conns, max  int
	err         error // for every call
	roles       []string
	hostsCalled int
}

func (f *fakeDB) Hosts(ctx context.Context) ([]kojidb.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hostsCalled++
	if f.err != nil {
		return nil, f.err
	}
	hosts := slices.Clone(f.hosts)
	if f.ownAge {
		for i := range hosts {
			if !hosts[i].LastCheckin.IsZero() {
				hosts[i].CheckinAge = time.Since(hosts[i].LastCheckin)
			}
		}
	}
	return hosts, nil
}

func (f *fakeDB) ConnectionCount(ctx context.Context, role string) (int, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roles = append(f.roles, role)
	if f.err != nil {
		return 0, 0, f.err
	}
	return f.conns, f.max, nil
}

func (f *fakeDB) setConns(n, max int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns, f.max = n, max
}

func (f *fakeDB) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeDB) setHosts(h ...kojidb.Host) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts = h
}

// channel records the notifications; while down, Notify refuses them.
type channel struct {
	mu       sync.Mutex
	lines    []string
	messages []reply.Message
	refused  []string
	down     bool
	consumed int
}

func (c *channel) Notify(m reply.Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		c.refused = append(c.refused, m.String())
		return false
	}
	c.lines = append(c.lines, m.String())
	c.messages = append(c.messages, m)
	return true
}

// last is the last notification sent.
func (c *channel) last() reply.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.messages) == 0 {
		return reply.Message{}
	}
	return c.messages[len(c.messages)-1]
}

func (c *channel) setDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

// take returns the lines sent since the last take.
func (c *channel) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.lines[c.consumed:])
	c.consumed = len(c.lines)
	return out
}

// observer records the metrics.
type observer struct {
	mu     sync.Mutex
	ran    map[string]int // "kind/result" -> count
	firing int
}

func (o *observer) CheckRan(kind, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ran == nil {
		o.ran = map[string]int{}
	}
	o.ran[kind+"/"+result]++
}

func (o *observer) SetFiring(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.firing = n
}

// rig is a Watcher wired to fakes.
type rig struct {
	w       *Watcher
	disk    *fakeDisk
	db      *fakeDB
	ch      *channel
	drafts  *outage.Store
	metrics *observer
	cfg     *config.Config
	ctx     context.Context
	bus     *messaging.Recorder
}

// testConfig is the configuration the tests start from: one builder mount
// pair, one shared mount, the defaults otherwise.
func testConfig() *config.Config {
	cfg := config.Default()
	cfg.Disk.Mounts = []string{"/var/lib/mock", "/mnt/build"}
	cfg.Disk.SharedMounts = []string{"/mnt/koji"}
	cfg.Disk.SharedFrom = "koji-hub"
	cfg.Disk.Escalate = []string{"alice", "carol"}
	cfg.HTTP.PublicURL = "https://kojibot.example.org/"
	return cfg
}

// newRig builds a Watcher on cfg (testConfig when nil) whose builders are
// builders; the disk and database start healthy and quiet.
func newRig(t *testing.T, cfg *config.Config, builders ...string) *rig {
	t.Helper()
	if cfg == nil {
		cfg = testConfig()
	}
	r := &rig{
		disk:    newFakeDisk(),
		db:      &fakeDB{conns: 10, max: 100},
		ch:      &channel{},
		metrics: &observer{},
		cfg:     cfg,
		ctx:     t.Context(),
		bus:     &messaging.Recorder{},
	}
	r.db.ownAge = true
	r.drafts = outage.NewStore(0, time.Now)
	for _, b := range builders {
		for _, m := range cfg.Disk.Mounts {
			r.disk.set(b, m, 40)
		}
	}
	for _, m := range cfg.Disk.SharedMounts {
		r.disk.set(cfg.Disk.SharedFrom, m, 50)
	}
	var mu sync.Mutex
	list := slices.Clone(builders)
	r.w = New(cfg, Deps{
		Disk:   r.disk,
		DB:     r.db,
		Drafts: r.drafts,
		Notify: r.ch.Notify,
		Builders: func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(list)
		},
		Metrics: r.metrics,
		Bus:     r.bus,
	})
	return r
}

// check moves the clock d on (in a synctest bubble), runs one round and returns what it said.
func (r *rig) check(d time.Duration) []string {
	time.Sleep(d)
	r.w.CheckOnce(r.ctx)
	return r.ch.take()
}

// expect fails unless got is exactly want.
func expect(t *testing.T, when string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: notified\n  %q\nwant\n  %q", when, got, want)
	}
}

func TestDiskFireRepeatResolve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil, "xenbuilder2", "xenbuilder3")
		expect(t, "all quiet", r.check(0))

		r.disk.set("xenbuilder2", "/var/lib/mock", 93)
		expect(t, "crossing the threshold", r.check(5*time.Minute),
			"ALERT disk: xenbuilder2 /var/lib/mock 93% full (threshold 90%)")
		if got, want := r.w.Firing(), []string{"disk:xenbuilder2:/var/lib/mock"}; !slices.Equal(got, want) {
			t.Fatalf("Firing = %q, want %q", got, want)
		}

		// Still full: nothing until watch.repeat (6h) has passed.
		r.disk.set("xenbuilder2", "/var/lib/mock", 95.46)
		for i := 1; i < 72; i++ { // 71 rounds of 5m: 5h55m
			expect(t, fmt.Sprintf("round %d before the reminder", i), r.check(5*time.Minute))
		}
		expect(t, "after watch.repeat", r.check(5*time.Minute),
			"REMINDER disk: xenbuilder2 /var/lib/mock 95.5% full (threshold 90%) — failing for 6h")
		expect(t, "right after the reminder", r.check(5*time.Minute))

		r.disk.set("xenbuilder2", "/var/lib/mock", 71)
		expect(t, "cleared", r.check(time.Hour),
			"RESOLVED disk: xenbuilder2 /var/lib/mock 71% (was failing 7h5m)")
		expect(t, "cleared, next round", r.check(5*time.Minute))
		if got := r.w.Firing(); len(got) != 0 {
			t.Fatalf("Firing after resolve = %q", got)
		}
	})
}

func TestDiskHysteresis(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil, "xenbuilder2")
		const alert = "ALERT disk: xenbuilder2 /mnt/build 90% full (threshold 90%)"
		steps := []struct {
			percent float64
			want    []string
		}{
			{89.9, nil},
			{90, []string{alert}},
			{89, nil},   // below the threshold, but within the hysteresis
			{88.5, nil}, // still within
			{90.5, nil}, // back over: already firing
			{88.1, nil},
			{87.9, []string{"RESOLVED disk: xenbuilder2 /mnt/build 87.9% (was failing 25m)"}},
			{89.9, nil}, // under the threshold: not firing again
			{90, []string{alert}},
		}
		for i, s := range steps {
			r.disk.set("xenbuilder2", "/mnt/build", s.percent)
			expect(t, fmt.Sprintf("step %d (%v%%)", i, s.percent), r.check(5*time.Minute), s.want...)
		}
	})
}

func TestSharedMountDraft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		expect(t, "quiet", r.check(0))

		r.disk.set("koji-hub", "/mnt/koji", 93.5)
		got := r.check(time.Minute)
		expect(t, "shared mount full", got,
			"ALERT shared mount /mnt/koji on koji-hub 93.5% full (threshold 90%); outage draft o1: "+
				"https://kojibot.example.org"+draftPath(t, r, "o1")+" — escalate: alice, carol")

		// A structured message: the headline, the draft as a link, the
		// people to escalate to as mentions.
		m := r.ch.last()
		if !slices.Equal(m.Lines, []string{"ALERT shared mount /mnt/koji on koji-hub 93.5% full (threshold 90%)"}) ||
			!slices.Equal(m.Links, []reply.Link{{Label: "outage draft o1", URL: "https://kojibot.example.org" + draftPath(t, r, "o1")}}) ||
			m.Mentions == nil || m.Mentions.Label != "escalate" || !slices.Equal(m.Mentions.Users, []string{"alice", "carol"}) {
			t.Errorf("alert message %+v %+v", m, m.Mentions)
		}
		drafts, _ := r.drafts.List()
		if len(drafts) != 1 {
			t.Fatalf("%d drafts, want 1: %+v", len(drafts), drafts)
		}
		d := drafts[0]
		if d.ID != "o1" || d.Planned || !d.Start.Equal(t0.Add(time.Minute)) || d.CreatedBy != outage.AutoAuthor ||
			!strings.Contains(d.Reason, "/mnt/koji on koji-hub is 93.5% full") ||
			!slices.Equal(d.Contacts, []string{"alice", "carol"}) || !slices.Equal(d.To, config.Default().Outage.To) {
			t.Fatalf("draft = %+v", d)
		}
		want := outage.ForFullMount("/mnt/koji", 93.5, "koji-hub", t0.Add(time.Minute), []string{"alice", "carol"}, config.Default().Outage.To)
		_, gotBody, err1 := outage.Render(d)
		_, wantBody, err2 := outage.Render(want)
		if err1 != nil || err2 != nil || gotBody != wantBody {
			t.Fatalf("draft renders differently from outage.ForFullMount's (%v, %v):\n%s", err1, err2, gotBody)
		}

		// Still full: no second draft, no second alert; the reminder links the draft.
		for i := 0; i < 71; i++ {
			expect(t, "still full", r.check(5*time.Minute))
		}
		expect(t, "reminder", r.check(5*time.Minute),
			"REMINDER shared mount /mnt/koji on koji-hub 93.5% full (threshold 90%) — failing for 6h; outage draft o1: "+
				"https://kojibot.example.org"+draftPath(t, r, "o1"))
		if m := r.ch.last(); len(m.Links) != 1 || m.Mentions != nil {
			t.Errorf("reminder message: links %+v, mentions %+v; want the draft's link and no one mentioned", m.Links, m.Mentions)
		}
		if list, _ := r.drafts.List(); len(list) != 1 {
			n := len(list)
			t.Fatalf("%d drafts after the reminder, want 1", n)
		}

		r.disk.set("koji-hub", "/mnt/koji", 60)
		expect(t, "cleared", r.check(5*time.Minute),
			"RESOLVED shared mount /mnt/koji on koji-hub 60% (was failing 6h5m)")

		// Filling up again is a new outage: a new draft.
		r.disk.set("koji-hub", "/mnt/koji", 99)
		got = r.check(5 * time.Minute)
		expect(t, "full again", got,
			"ALERT shared mount /mnt/koji on koji-hub 99% full (threshold 90%); outage draft o2: "+
				"https://kojibot.example.org"+draftPath(t, r, "o2")+" — escalate: alice, carol")
	})
}

// draftPath is the HTTP path of the stored draft id: under its random
// token, never its guessable short id.
func draftPath(t *testing.T, r *rig, id string) string {
	t.Helper()
	d, ok, _ := r.drafts.Get(id)
	if !ok || len(d.Token) < 26 || d.Path() != "/drafts/"+d.Token {
		t.Fatalf("draft %s: %+v, %v; want one with a random token", id, d, ok)
	}
	return d.Path()
}

func TestSharedMountDraftWithoutPublicURL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.HTTP.PublicURL = ""
		cfg.Disk.Escalate = nil
		cfg.Outage.To = []string{"ops@example.org"}
		r := newRig(t, cfg)
		r.disk.set("koji-hub", "/mnt/koji", 95)
		expect(t, "shared mount full", r.check(0),
			"ALERT shared mount /mnt/koji on koji-hub 95% full (threshold 90%); outage draft o1: !koji outage show o1")
		if m := r.ch.last(); m.Mentions != nil {
			t.Errorf("mentions %+v without disk.escalate", m.Mentions)
		}
		d, ok, _ := r.drafts.Get("o1")
		if !ok || !slices.Equal(d.To, []string{"ops@example.org"}) || len(d.Contacts) != 0 {
			t.Fatalf("draft o1 = %+v, %v", d, ok)
		}
	})
}

func TestSharedMountRetryMakesOneDraft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		r.disk.set("koji-hub", "/mnt/koji", 95)
		r.ch.setDown(true)
		expect(t, "channel down", r.check(0))
		expect(t, "channel still down", r.check(5*time.Minute))
		r.ch.setDown(false)
		got := r.check(5 * time.Minute)
		alert := "ALERT shared mount /mnt/koji on koji-hub 95% full (threshold 90%); outage draft o1: " +
			"https://kojibot.example.org" + draftPath(t, r, "o1") + " — escalate: alice, carol"
		expect(t, "channel back", got, alert)
		if r.ch.refused[0] != alert || r.ch.refused[1] != alert {
			t.Fatalf("refused notifications = %q, want the same alert twice", r.ch.refused)
		}
		if list, _ := r.drafts.List(); len(list) != 1 {
			n := len(list)
			t.Fatalf("%d drafts, want 1", n)
		}
		expect(t, "sent once", r.check(5*time.Minute))
	})
}

func TestStaleBuilders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		const ppc3, x86 = "ppc3.fedora.redhat.com", "buildvm-x86-01.iad2.fedoraproject.org"
		hosts := func(ppc3Checkin time.Time) []kojidb.Host {
			return []kojidb.Host{
				{Name: x86, Enabled: true, LastCheckin: time.Now().Add(-time.Minute)},
				{Name: "new.fedora.redhat.com", Enabled: true}, // never checked in
				{Name: "old.fedora.redhat.com", Enabled: false, LastCheckin: t0.Add(-400 * 24 * time.Hour)},
				{Name: ppc3, Enabled: true, LastCheckin: ppc3Checkin},
			}
		}
		r.db.setHosts(hosts(t0.Add(-14 * time.Minute))...)
		expect(t, "first round", r.check(0),
			"ALERT stale builder: new.fedora.redhat.com has never checked in",
			"ALERT stale builder: ppc3.fedora.redhat.com last checked in 14m ago (stale after 10m)")
		if got, want := r.w.Firing(), []string{"stale:new.fedora.redhat.com", "stale:" + ppc3}; !slices.Equal(got, want) {
			t.Fatalf("Firing = %q, want %q", got, want)
		}

		// Six hours on: ppc3 is reminded of, the host that never checked in is not.
		time.Sleep(6 * time.Hour)
		r.db.setHosts(hosts(t0.Add(-14 * time.Minute))...)
		expect(t, "after watch.repeat", r.check(0),
			"REMINDER stale builder: ppc3.fedora.redhat.com last checked in 6h14m ago (stale after 10m) — failing for 6h")
		time.Sleep(6 * time.Hour)
		r.db.setHosts(hosts(t0.Add(-14 * time.Minute))...)
		expect(t, "12h on", r.check(0),
			"REMINDER stale builder: ppc3.fedora.redhat.com last checked in 12h14m ago (stale after 10m) — failing for 12h")

		r.db.setHosts(hosts(time.Now().Add(-30 * time.Second))...)
		expect(t, "ppc3 checked in", r.check(time.Second),
			"RESOLVED stale builder: ppc3.fedora.redhat.com checked in 31s ago (was failing 12h)")

		// Disabling a host that never checked in clears it too.
		r.db.setHosts(kojidb.Host{Name: "new.fedora.redhat.com", Enabled: false})
		expect(t, "disabled", r.check(time.Minute),
			"RESOLVED stale builder: new.fedora.redhat.com is disabled in Koji (was failing 12h1m)")
		if got := r.w.Firing(); len(got) != 0 {
			t.Fatalf("Firing = %q", got)
		}
	})
}

func TestConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Koji.DBUser = "kojihub"
		r := newRig(t, cfg)
		steps := []struct {
			count, max int
			want       []string
		}{
			{79, 100, nil},
			{85, 100, []string{"ALERT connections: kojihub holds 85 of 100 connections (85%, threshold 80%)"}},
			{79, 100, nil}, // within the hysteresis
			{99, 100, nil},
			{77, 100, []string{"RESOLVED connections: kojihub holds 77 of 100 connections (77%) (was failing 15m)"}},
			{160, 200, []string{"ALERT connections: kojihub holds 160 of 200 connections (80%, threshold 80%)"}},
		}
		for i, s := range steps {
			r.db.setConns(s.count, s.max)
			expect(t, fmt.Sprintf("step %d (%d/%d)", i, s.count, s.max), r.check(5*time.Minute), s.want...)
		}
		for _, role := range r.db.roles {
			if role != "kojihub" {
				t.Fatalf("ConnectionCount asked for role %q, want koji.db_user", role)
			}
		}
	})
}

func TestCheckErrorReportedOnceAndRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil, "xenbuilder2", "xenbuilder3")
		r.disk.set("xenbuilder2", "/var/lib/mock", 95)
		expect(t, "full", r.check(0), "ALERT disk: xenbuilder2 /var/lib/mock 95% full (threshold 90%)")

		r.disk.fail("xenbuilder2", fmt.Errorf("fleet: xenbuilder2 (xenbuilder2.example.org:22): %w: connect: connection refused\nmore detail", fleet.ErrUnreachable))
		expect(t, "unreachable", r.check(5*time.Minute),
			"CHECK FAILED disk xenbuilder2: fleet: xenbuilder2 (<address>): unreachable: connect: connection refused")
		// Unreachable for longer than watch.repeat: neither repeated nor reminded
		// nor resolved, and the alert is not forgotten.
		for i := 0; i < 80; i++ {
			expect(t, "still unreachable", r.check(5*time.Minute))
		}
		if got := r.w.Firing(); !slices.Equal(got, []string{"disk:xenbuilder2:/var/lib/mock"}) {
			t.Fatalf("Firing while unreachable = %q", got)
		}

		r.disk.fail("xenbuilder2", nil)
		r.disk.set("xenbuilder2", "/var/lib/mock", 50)
		expect(t, "back", r.check(5*time.Minute),
			"CHECK RECOVERED disk xenbuilder2 (could not run for 6h45m)",
			"RESOLVED disk: xenbuilder2 /var/lib/mock 50% (was failing 6h50m)")
		expect(t, "back, next round", r.check(5*time.Minute))

		// One mount df cannot read: that mount's check fails, the others run.
		r.disk.mu.Lock()
		delete(r.disk.percent["xenbuilder3"], "/mnt/build")
		r.disk.mu.Unlock()
		expect(t, "mount missing", r.check(5*time.Minute),
			"CHECK FAILED disk xenbuilder3 /mnt/build: fleet: xenbuilder3: df: cannot read <path>: No such file or directory")
		expect(t, "mount still missing", r.check(5*time.Minute))
		r.disk.set("xenbuilder3", "/mnt/build", 10)
		expect(t, "mount back", r.check(5*time.Minute),
			"CHECK RECOVERED disk xenbuilder3 /mnt/build (could not run for 10m), now disk: xenbuilder3 /mnt/build 10%")
	})
}

func TestDatabaseDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		r.db.setHosts(kojidb.Host{Name: "ppc3", Enabled: true, LastCheckin: t0.Add(-time.Hour)})
		r.db.setConns(90, 100)
		expect(t, "stale and busy", r.check(0),
			"ALERT stale builder: ppc3 last checked in 1h ago (stale after 10m)",
			"ALERT connections: koji holds 90 of 100 connections (90%, threshold 80%)")

		r.db.setErr(fmt.Errorf("kojidb: list hosts: %w: cannot connect: dial tcp 10.0.0.3:5432: connect: connection refused", kojidb.ErrUnavailable))
		expect(t, "database down", r.check(5*time.Minute),
			"CHECK FAILED stale builders: kojidb: list hosts: Koji database unavailable: cannot connect: dial tcp <address>: connect: connection refused",
			"CHECK FAILED connections koji: kojidb: list hosts: Koji database unavailable: cannot connect: dial tcp <address>: connect: connection refused")
		expect(t, "database still down", r.check(5*time.Minute))
		if got, want := r.w.Firing(), []string{"connections:koji", "stale:ppc3"}; !slices.Equal(got, want) {
			t.Fatalf("Firing while the database is down = %q, want %q", got, want)
		}

		r.db.setErr(nil)
		r.db.setHosts(kojidb.Host{Name: "ppc3", Enabled: true, LastCheckin: time.Now()})
		expect(t, "database back", r.check(5*time.Minute),
			"CHECK RECOVERED stale builders (could not run for 10m)",
			"RESOLVED stale builder: ppc3 checked in 5m ago (was failing 15m)",
			"CHECK RECOVERED connections koji (could not run for 10m), now connections: koji holds 90 of 100 connections (90%, threshold 80%)")
	})
}

// TestStaleUsesDatabaseAge: staleness is judged on the check-in age the
// database computed against its own now(), never on the bot's clock: a
// check-in 9 hours "in the past" by the bot's clock (a zone mix-up, a
// skewed clock) but 30 seconds old for the database is fresh, and one
// that looks current to the bot but is an hour old for the database is
// stale.
func TestStaleUsesDatabaseAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		r.db.ownAge = false // the ages below are the database's
		r.db.setHosts(
			kojidb.Host{Name: "ppc2", Enabled: true, LastCheckin: time.Now().Add(-9 * time.Hour), CheckinAge: 30 * time.Second},
			kojidb.Host{Name: "ppc3", Enabled: true, LastCheckin: time.Now(), CheckinAge: time.Hour},
		)
		expect(t, "database ages", r.check(0),
			"ALERT stale builder: ppc3 last checked in 1h ago (stale after 10m)")
	})
}

func TestNotifyRefusedIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil, "xenbuilder2")
		r.disk.set("xenbuilder2", "/var/lib/mock", 92)
		r.ch.setDown(true)
		expect(t, "channel down", r.check(0))
		if got := r.w.Firing(); len(got) != 0 {
			t.Fatalf("Firing = %q before the alert went out", got)
		}
		const alert = "ALERT disk: xenbuilder2 /var/lib/mock 92% full (threshold 90%)"
		if !slices.Equal(r.ch.refused, []string{alert}) {
			t.Fatalf("refused = %q", r.ch.refused)
		}
		r.ch.setDown(false)
		expect(t, "channel back", r.check(5*time.Minute), alert)
		expect(t, "sent", r.check(5*time.Minute))

		// A RESOLVED that cannot go out is retried too.
		r.disk.set("xenbuilder2", "/var/lib/mock", 10)
		r.ch.setDown(true)
		expect(t, "resolve refused", r.check(5*time.Minute))
		r.ch.setDown(false)
		expect(t, "resolve retried", r.check(5*time.Minute),
			"RESOLVED disk: xenbuilder2 /var/lib/mock 10% (was failing 15m)")
	})
}

func TestRemovedBuilderIsForgotten(t *testing.T) {
	cfg := testConfig()
	cfg.Disk.SharedMounts = nil
	disk := newFakeDisk()
	disk.set("a", "/var/lib/mock", 99)
	disk.set("a", "/mnt/build", 1)
	disk.set("b", "/var/lib/mock", 99)
	disk.set("b", "/mnt/build", 1)
	builders := []string{"b", "a", "a", ""}
	var lines []string
	w := New(cfg, Deps{
		Disk:     disk,
		Builders: func() []string { return builders },
		Notify:   func(m reply.Message) bool { lines = append(lines, m.String()); return true },
	})
	w.CheckOnce(t.Context())
	if want := []string{"disk:a:/var/lib/mock", "disk:b:/var/lib/mock"}; !slices.Equal(w.Firing(), want) {
		t.Fatalf("Firing = %q, want %q", w.Firing(), want)
	}
	if len(lines) != 2 || !strings.Contains(lines[0], " a ") || !strings.Contains(lines[1], " b ") {
		t.Fatalf("notified %q; want a then b, once each", lines)
	}
	builders = []string{"a"}
	w.CheckOnce(t.Context())
	if want := []string{"disk:a:/var/lib/mock"}; !slices.Equal(w.Firing(), want) {
		t.Fatalf("Firing after b left = %q, want %q", w.Firing(), want)
	}
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil, "xenbuilder2", "xenbuilder3")
		r.disk.set("xenbuilder2", "/var/lib/mock", 95)
		r.disk.fail("xenbuilder3", errors.New("unreachable"))
		r.db.setHosts(kojidb.Host{Name: "ppc3", Enabled: true, LastCheckin: t0})
		r.check(0)
		r.metrics.mu.Lock()
		defer r.metrics.mu.Unlock()
		want := map[string]int{
			"disk/failing": 1, "disk/error": 1, "shared/ok": 1, "stale/ok": 1, "connections/ok": 1,
		}
		if fmt.Sprint(r.metrics.ran) != fmt.Sprint(want) {
			t.Fatalf("CheckRan = %v, want %v", r.metrics.ran, want)
		}
		if r.metrics.firing != 1 {
			t.Fatalf("SetFiring(%d), want 1", r.metrics.firing)
		}
	})
}

func TestRoundBoundedByInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Watch.Interval = 200 * time.Millisecond
		cfg.SSH.Parallel = 3
		cfg.Disk.SharedFrom = "" // only the builders' df calls
		r := newRig(t, cfg, "b1", "b2", "b3", "b4", "b5", "b6", "b7")
		r.disk.block = true
		start := time.Now()
		got := r.check(0)
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("CheckOnce took %v with hung hosts and a 200ms interval", took)
		}
		if r.disk.peak > 3 {
			t.Fatalf("%d df calls at once, want at most ssh.parallel (3)", r.disk.peak)
		}
		// Every builder is reported as a failed check.
		if len(got) != 7 {
			t.Fatalf("notified %d lines, want 7: %q", len(got), got)
		}
		for _, line := range got {
			if !strings.HasPrefix(line, "CHECK FAILED ") {
				t.Fatalf("line %q is not a CHECK FAILED", line)
			}
		}
	})
}

func TestCancelledRoundSaysNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil, "xenbuilder2")
		r.disk.block = true
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			for {
				r.disk.mu.Lock()
				n := r.disk.running
				r.disk.mu.Unlock()
				if n > 0 {
					cancel()
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		r.w.CheckOnce(ctx)
		if got := r.ch.take(); len(got) != 0 {
			t.Fatalf("a round cut short by shutdown notified %q", got)
		}
	})
}

func TestRun(t *testing.T) {
	cfg := testConfig()
	cfg.Watch.Interval = 20 * time.Millisecond
	var rounds atomic.Int32
	db := &fakeDB{max: 100}
	counting := countingDB{fakeDB: db, n: &rounds}
	w := New(cfg, Deps{DB: counting})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		w.Run(ctx)
		close(done)
	}()
	deadline := time.After(10 * time.Second)
	for rounds.Load() < 3 {
		select {
		case <-deadline:
			t.Fatalf("Run made %d rounds in 10s with a 20ms interval", rounds.Load())
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// countingDB counts the rounds by the calls to Hosts.
type countingDB struct {
	*fakeDB
	n *atomic.Int32
}

func (c countingDB) Hosts(ctx context.Context) ([]kojidb.Host, error) {
	c.n.Add(1)
	return c.fakeDB.Hosts(ctx)
}

func TestPanickingReaderIsACheckFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		w := New(r.cfg, Deps{
			Disk:     panicDisk{},
			Builders: func() []string { return []string{"xenbuilder2"} },
			Notify:   r.ch.Notify,
		})
		w.CheckOnce(t.Context())
		got := r.ch.take()
		if len(got) != 2 || !strings.HasPrefix(got[0], "CHECK FAILED disk xenbuilder2: df on xenbuilder2: panic: boom") ||
			strings.Contains(got[0], "\n") {
			t.Fatalf("notified %q", got)
		}
	})
}

type panicDisk struct{}

func (panicDisk) DiskUsage(context.Context, string, []string) ([]fleet.Usage, error) { panic("boom") }

func TestText(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {0, "0s"}, {45 * time.Second, "45s"}, {14*time.Minute + 20*time.Second, "14m"},
		{2*time.Hour + 5*time.Minute, "2h5m"}, {6 * time.Hour, "6h"}, {47*time.Hour + 59*time.Minute, "47h59m"},
		{50 * time.Hour, "2d2h"}, {72 * time.Hour, "3d"},
	} {
		if got := human(c.d); got != c.want {
			t.Errorf("human(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	for _, c := range []struct {
		p    float64
		want string
	}{{93, "93%"}, {93.46, "93.5%"}, {89.96, "90%"}, {0, "0%"}} {
		if got := pct(c.p); got != c.want {
			t.Errorf("pct(%v) = %q, want %q", c.p, got, c.want)
		}
	}
	long := strings.Repeat("é", 150) // 300 bytes
	if got := reason(long); len(got) > maxReason+len("…") || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éé") {
		t.Errorf("reason(long) = %q (%d bytes)", got, len(got))
	}
	if got := reason("first  line\nsecond"); got != "first line" {
		t.Errorf("reason = %q", got)
	}
}

// TestStaleBuildersBatched: when many builders go silent at once (a hub
// outage), the channel gets one line naming them, not one line each; the
// recovery is one line too.
func TestStaleBuildersBatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		hosts := func(checkin time.Time) []kojidb.Host {
			var hs []kojidb.Host
			for i := 1; i <= 12; i++ {
				hs = append(hs, kojidb.Host{Name: fmt.Sprintf("buildvm-%02d.fedoraproject.org", i), Enabled: true, LastCheckin: checkin})
			}
			return hs
		}
		r.db.setHosts(hosts(t0.Add(-20 * time.Minute))...)
		got := r.check(0)
		if len(got) != 1 || !strings.HasPrefix(got[0], "ALERT stale builders (12): buildvm-01.fedoraproject.org, ") ||
			!strings.HasSuffix(got[0], "and 2 more") {
			t.Fatalf("first round: %q, want one ALERT line naming 12 builders", got)
		}
		if n := len(r.w.Firing()); n != 12 {
			t.Fatalf("%d firing, want 12", n)
		}
		expect(t, "no repeat", r.check(time.Minute))
		r.db.setHosts(hosts(time.Now().Add(-5 * time.Second))...)
		got = r.check(time.Second)
		if len(got) != 1 || !strings.HasPrefix(got[0], "RESOLVED stale builders (12): ") {
			t.Fatalf("recovery: %q, want one RESOLVED line", got)
		}
		// Unsent: nothing is recorded, the same line comes again.
		r.db.setHosts(hosts(t0.Add(-20 * time.Minute))...)
		r.ch.setDown(true)
		expect(t, "channel down", r.check(time.Minute))
		r.ch.setDown(false)
		if got := r.check(time.Minute); len(got) != 1 || !strings.HasPrefix(got[0], "ALERT stale builders (12)") {
			t.Fatalf("after the channel came back: %q", got)
		}
	})
}

func TestDiskAlertSaysTheTrend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil, "xenbuilder2")
		r.cfg.Disk.PredictWithin = 0 // the early warning is tested on its own
		r.w = New(r.cfg, r.w.deps)
		// +0.5 points every 5 minutes: +6%/h.
		for i, p := range []float64{87, 87.5, 88, 88.5, 89, 89.5} {
			r.disk.set("xenbuilder2", "/mnt/build", p)
			expect(t, fmt.Sprintf("filling, round %d", i), r.check(5*time.Minute))
		}
		r.disk.set("xenbuilder2", "/mnt/build", 90)
		expect(t, "crossing the threshold", r.check(5*time.Minute),
			"ALERT disk: xenbuilder2 /mnt/build 90% full, +6.0%/h, full in about 1 h 40 min (threshold 90%)")
		p := r.w.Predict(alerting.CheckName(KindDisk, "xenbuilder2", "/mnt/build"))
		if !p.Filling || p.PercentPerHour != 6 || p.FullIn != 100*time.Minute {
			t.Fatalf("Predict = %+v", p)
		}
	})
}

func TestSharedMountDraftSaysTheTrend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		for _, p := range []float64{80, 84, 88, 92} {
			r.disk.set("koji-hub", "/mnt/koji", p)
			r.check(time.Hour)
		}
		// 92% at +4%/h: full in two hours.
		if d, _ := r.drafts.List(); len(d) != 1 || !strings.Contains(d[0].Reason, "is 92% full, +4.0%/h, full in about 2 h.") {
			t.Fatalf("drafts %+v, want one saying the trend", d)
		}
	})
}

func TestPredictFollowsACleanUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil, "xenbuilder2")
		check := alerting.CheckName(KindDisk, "xenbuilder2", "/var/lib/mock")
		// Filling fast, then cleaned up, then filling slowly.
		for _, p := range []float64{60, 70, 80, 85, 30, 31, 32, 33} {
			r.disk.set("xenbuilder2", "/var/lib/mock", p)
			r.check(time.Hour)
		}
		p := r.w.Predict(check)
		if !p.Filling || p.PercentPerHour != 1 || p.FullIn != 67*time.Hour {
			t.Fatalf("Predict after a clean-up = %+v, want +1%%/h, full in 67h", p)
		}
	})
}

func TestMemorySamplesBounded(t *testing.T) {
	m := NewMemorySamples(time.Hour, 10*time.Minute) // at most 7
	for i := range 20 {
		m.Append("c", trend.Sample{At: t0.Add(time.Duration(i) * 5 * time.Minute), Percent: float64(i)})
	}
	if n := m.Len("c"); n != 7 {
		t.Fatalf("kept %d, want 7", n)
	}
	got := m.Recent("c", t0.Add(90*time.Minute))
	if len(got) != 2 || got[0].Percent != 18 || got[1].Percent != 19 {
		t.Fatalf("Recent = %+v", got)
	}
	// By age too: a reading older than an hour goes.
	m = NewMemorySamples(time.Hour, time.Minute)
	m.Append("c", trend.Sample{At: t0, Percent: 1})
	m.Append("c", trend.Sample{At: t0.Add(2 * time.Hour), Percent: 2})
	if n := m.Len("c"); n != 1 {
		t.Fatalf("kept %d, want 1", n)
	}
}

func TestEarlyWarning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Disk.PredictWithin = 3 * time.Hour
		r := newRig(t, cfg, "xenbuilder2")
		// +0.5 points every 5 minutes: +6%/h, so 3h ahead at 82%.
		steps := []struct {
			percent float64
			want    []string
		}{
			{78.5, nil},
			{79, nil},
			{79.5, nil}, // full in 3h25m: not yet
			{80, nil},   // 3h20m
			{80.5, nil},
			{81, nil},
			{81.5, nil},
			{82, []string{"WARNING disk xenbuilder2 /mnt/build 82% full, +6.0%/h, full in about 3 h (predicted full within 3h)"}},
			{82.5, nil}, // announced once
			{83, nil},
			{50, []string{"RESOLVED disk xenbuilder2 /mnt/build 50%, no longer predicted full within 3h (warned 15m ago)"}}, // a clean-up
			{50.5, nil},
			{51, nil},
			{51.5, nil}, // filling again, but not soon
		}
		for i, s := range steps {
			r.disk.set("xenbuilder2", "/mnt/build", s.percent)
			expect(t, fmt.Sprintf("step %d (%v%%)", i, s.percent), r.check(5*time.Minute), s.want...)
		}
	})
}

func TestEarlyWarningEndsSilentlyAtTheThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil, "xenbuilder2") // disk.predict_within: the default 6h
		// +1 point every 5 minutes: +12%/h.
		steps := []struct {
			percent float64
			want    []string
		}{
			{84, nil},
			{85, nil},
			{86, []string{"WARNING disk xenbuilder2 /mnt/build 86% full, +12.0%/h, full in about 1 h 10 min (predicted full within 6h)"}},
			{87, nil},
			{88, nil},
			{89, nil},
			{90, []string{"ALERT disk: xenbuilder2 /mnt/build 90% full, +12.0%/h, full in about 50 min (threshold 90%)"}},
		}
		for i, s := range steps {
			r.disk.set("xenbuilder2", "/mnt/build", s.percent)
			expect(t, fmt.Sprintf("step %d (%v%%)", i, s.percent), r.check(5*time.Minute), s.want...)
		}
		if got, want := r.w.Firing(), []string{"disk:xenbuilder2:/mnt/build"}; !slices.Equal(got, want) {
			t.Errorf("Firing = %q, want %q: the warning ends over the threshold", got, want)
		}
	})
}

func TestEarlyWarningOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Disk.PredictWithin = 0
		r := newRig(t, cfg, "xenbuilder2")
		for i, p := range []float64{80, 82, 84, 86, 88} {
			r.disk.set("xenbuilder2", "/mnt/build", p)
			expect(t, fmt.Sprintf("round %d", i), r.check(5*time.Minute))
		}
	})
}
