package commands

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojidb"
)

func testHosts(now time.Time) []kojidb.Host {
	return []kojidb.Host{
		{ID: 1, Name: "ppc3.fedora.redhat.com", Capacity: 4, TaskLoad: 1.5, Ready: true, Enabled: true, Arches: "ppc ppc64", LastCheckin: now.Add(-2 * time.Minute), CheckinAge: 2 * time.Minute},
		{ID: 2, Name: "ppc2.fedora.redhat.com", Capacity: 2, Enabled: true},
		{ID: 3, Name: "x86-01.phx2.fedoraproject.org", Capacity: 8, Enabled: true},
		{ID: 4, Name: "x86-01.iad2.fedoraproject.org", Capacity: 8, Enabled: false},
	}
}

func newTestDispatcher(t *testing.T) (*Dispatcher, *fakeDB) {
	t.Helper()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	db := &fakeDB{hosts: testHosts(now)}
	d := New(Deps{DB: db, ACL: fakeACL{members: map[string]bool{"alice": true}}, Now: func() time.Time { return now }})
	return d, db
}

func run(d *Dispatcher, account, text string) string {
	r := &recorder{}
	d.Handle(context.Background(), Request{Account: account, Nick: account, Place: "#fedora-admin", Text: text}, r)
	return r.all()
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		name, account, text string
		want                []string // substrings that must appear
		changes             int      // DB writes expected
	}{
		{"capacity", "alice", "capacity ppc3 2", []string{"ppc3.fedora.redhat.com capacity 4 → 2 (load 1.5)"}, 1},
		{"capacity full name", "alice", "capacity ppc3.fedora.redhat.com 2.5", []string{"4 → 2.5"}, 1},
		{"capacity same", "alice", "capacity ppc3 4", []string{"already 4"}, 1},
		{"not in group", "bob", "capacity ppc3 2", []string{"denied:", "sysadmin-build"}, 0},
		{"not logged in", "", "capacity ppc3 2", []string{"denied:", "identify"}, 0},
		{"capacity one", "alice", "capacity ppc3 1", []string{"error:", "greater than 1"}, 0},
		{"capacity word", "alice", "capacity ppc3 two", []string{"error:", "value must be a number", "usage: capacity <host> <value>"}, 0},
		{"capacity negative", "alice", "capacity ppc3 -2", []string{"error:"}, 0},
		{"capacity NaN", "alice", "capacity ppc3 NaN", []string{"error:", "must be a number"}, 0},
		{"capacity inf", "alice", "capacity ppc3 Inf", []string{"error:", "must be a number"}, 0},
		{"unknown host", "alice", "capacity nosuchhost 2", []string{"error:", "unknown host", "nosuchhost"}, 0},
		{"near host", "alice", "capacity ppc33 2", []string{"error:", "closest: ppc3.fedora.redhat.com"}, 0},
		{"ambiguous", "alice", "capacity x86-01 2", []string{"error:", "ambiguous", "x86-01.iad2.fedoraproject.org, x86-01.phx2.fedoraproject.org"}, 0},
		{"shell meta", "alice", "capacity ppc3;rm$(id) 2", []string{"error:", "host must be a host name"}, 0},
		{"shell meta value", "alice", "capacity ppc3 2;reboot", []string{"error:", "must be a number"}, 0},
		{"control char", "alice", "capacity ppc3\x01 2", []string{"error:", "control character"}, 0},
		{"newline", "alice", "capacity ppc3 2\nrestart all", []string{"error:", "control character"}, 0},
		{"too many args", "alice", "capacity ppc3 2 3", []string{"error:", "unexpected"}, 0},
		{"missing arg", "alice", "capacity ppc3", []string{"error:", "missing <value>"}, 0},
		{"long line", "alice", "capacity " + strings.Repeat("a", 600), []string{"error:", "too long"}, 0},
		{"unknown command", "alice", "capacty ppc3 2", []string{"error:", "did you mean capacity"}, 0},
		{"leading labels", "alice", "capacity x86-01.iad2 2", []string{"x86-01.iad2.fedoraproject.org capacity"}, 1},
		{"hosts", "alice", "hosts", []string{"4 hosts, 3 enabled, 1 ready\nhost ", "\nppc3.fedora.redhat.com "}, 0},
		{"hosts glob", "alice", "hosts ppc*", []string{"2 hosts", "ppc2", "ppc3"}, 0},
		{"hosts glob none", "alice", "hosts zz*", []string{"error:", "no host matches"}, 0},
		{"host", "alice", "host ppc3", []string{"ppc3.fedora.redhat.com: enabled, ready, load 1.5 of capacity 4, arches ppc ppc64, last check-in 2026-11-26 11:58:00 UTC (2m ago)"}, 0},
		{"disable", "alice", "disable ppc3 out of memory", []string{"ppc3.fedora.redhat.com disabled", "out of memory (alice via kojibot)"}, 1},
		{"enable already", "alice", "enable ppc3", []string{"already enabled"}, 1},
		{"help", "bob", "help", []string{"commands you may run: cancel, confirm, connections, disk, help, host, hosts, jobs, outage show, whoami"}, 0},
		{"help capacity", "alice", "help capacity", []string{"capacity <host> <value>", "e.g. !koji capacity ppc3 2"}, 0},
		{"whoami", "alice", "whoami", []string{"services account alice, FAS user alice", "capacity"}, 0},
		{"empty", "alice", "", []string{"commands you may run"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, db := newTestDispatcher(t)
			got := run(d, tt.account, tt.text)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q: reply %q lacks %q", tt.text, got, w)
				}
			}
			if db.sets != tt.changes {
				t.Errorf("%q: %d DB writes, want %d", tt.text, db.sets, tt.changes)
			}
		})
	}
}

// TestKojiUserMayNotEditHosts: when kojidb refuses a write because
// koji.user may not edit hosts, the reply is exactly the documented one,
// without the reason (which is for the log).
func TestKojiUserMayNotEditHosts(t *testing.T) {
	const want = "error: koji.user kojibot may not edit hosts (needs the host or admin permission)"
	for _, text := range []string{"capacity ppc3 2", "disable ppc3 broken disk", "enable x86-01.iad2.fedoraproject.org"} {
		d, db := newTestDispatcher(t)
		db.deny = &kojidb.PermissionError{User: "kojibot", Reason: "the user is blocked (users.status 1)"}
		got := strings.TrimSpace(run(d, "alice", text))
		if !strings.HasSuffix(got, want) || strings.Contains(got, "blocked") {
			t.Errorf("%q: reply %q, want %q", text, got, want)
		}
		if h := db.hosts[0]; h.Capacity != 4 || !h.Enabled || db.hosts[3].Enabled {
			t.Errorf("%q: refused write changed %+v", text, db.hosts)
		}
	}
}

// TestDisableAlreadyDisabled: disabling a disabled host with a reason
// updates its comment (Koji's editHost); without a reason nothing changes.
func TestDisableAlreadyDisabled(t *testing.T) {
	d, db := newTestDispatcher(t)
	db.hosts[3].Comment = "old reason"
	got := run(d, "alice", "disable x86-01.iad2.fedoraproject.org noisy fan")
	if !strings.Contains(got, "already disabled; comment: noisy fan (alice via kojibot)") {
		t.Errorf("reply %q", got)
	}
	if c := db.hosts[3].Comment; c != "noisy fan (alice via kojibot)" {
		t.Errorf("comment %q", c)
	}
	got = run(d, "alice", "disable x86-01.iad2.fedoraproject.org")
	if !strings.Contains(got, "already disabled; nothing changed") || db.hosts[3].Comment != "noisy fan (alice via kojibot)" {
		t.Errorf("disable without a reason: %q, comment %q", got, db.hosts[3].Comment)
	}
}

func TestDatabaseDown(t *testing.T) {
	d, db := newTestDispatcher(t)
	db.down = true
	got := run(d, "alice", "capacity ppc3 2")
	if !strings.HasPrefix(got, "error:") || !strings.Contains(got, "unavailable") {
		t.Fatalf("reply %q, want an error: saying the database is unavailable", got)
	}
}

// TestHelpExamplesParse runs every help example through the parser.
func TestHelpExamplesParse(t *testing.T) {
	d, _ := newTestDispatcher(t)
	for _, name := range d.Catalogue().Names() {
		s := d.Catalogue().Spec(name)
		if len(s.Examples) == 0 {
			t.Errorf("%s has no example", name)
		}
		for _, ex := range s.Examples {
			words, err := Tokenize(ex)
			if err != nil {
				t.Fatalf("%s: %v", ex, err)
			}
			spec, used := d.Catalogue().Lookup(words)
			if spec != s {
				t.Errorf("example %q finds %v, want %s", ex, spec, name)
				continue
			}
			if _, err := Parse(spec, words[used:]); err != nil {
				t.Errorf("example %q does not parse: %v", ex, err)
			}
		}
	}
}

func TestParseFlags(t *testing.T) {
	spec := &Spec{Name: "cleanup", Args: []Arg{{Name: "builder", Type: HostName}},
		Flags: []Flag{{Name: "older", Type: Duration}, {Name: "dry-run", Bool: true}}}
	p, err := Parse(spec, []string{"--dry-run", "xenbuilder2", "--older", "3d"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Normalized(), "cleanup xenbuilder2 --older=3d --dry-run"; got != want {
		t.Errorf("Normalized = %q, want %q", got, want)
	}
	q, err := Parse(spec, []string{"xenbuilder2", "--older=3d", "--dry-run"})
	if err != nil || q.Normalized() != p.Normalized() {
		t.Errorf("same action, different normal form: %v %q", err, q.Normalized())
	}
	for _, bad := range [][]string{{"x", "--older"}, {"x", "--older", "3"}, {"x", "--dry-run=1"}, {"x", "--force"}, {"x", "--older", "1d", "--older", "2d"}} {
		if _, err := Parse(spec, bad); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", bad)
		}
	}
}

func TestParseDurationAndSize(t *testing.T) {
	if d, err := ParseDuration("7d"); err != nil || d != 168*time.Hour {
		t.Errorf("7d = %v, %v", d, err)
	}
	if _, err := ParseDuration("7"); err == nil {
		t.Error("7 accepted as a duration")
	}
	for in, want := range map[string]int64{"4096": 4096, "4G": 4096, "512M": 512, "6g": 6144} {
		if got, err := ParseSizeMiB(in); err != nil || got != want {
			t.Errorf("ParseSizeMiB(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "4T", "-1", "4.5G", ""} {
		if _, err := ParseSizeMiB(bad); err == nil {
			t.Errorf("ParseSizeMiB(%q) accepted", bad)
		}
	}
}

func TestResolveName(t *testing.T) {
	names := []string{"ppc3.fedora.redhat.com", "x86-01.phx2.fedoraproject.org", "x86-01.iad2.fedoraproject.org"}
	if n, err := ResolveName("host", "PPC3", names); err != nil || n != names[0] {
		t.Errorf("PPC3 → %q, %v", n, err)
	}
	if _, err := ResolveName("host", "x86-01", names); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("x86-01: %v, want ambiguous", err)
	}
	if n, err := ResolveName("host", "x86-01.iad2.fedoraproject.org", names); err != nil || n != names[2] {
		t.Errorf("full name → %q, %v", n, err)
	}
	// Any unique leading run of whole labels.
	for q, want := range map[string]string{"x86-01.iad2": names[2], "X86-01.PHX2.fedoraproject": names[1], "ppc3.fedora": names[0]} {
		if n, err := ResolveName("host", q, names); err != nil || n != want {
			t.Errorf("%s → %q, %v; want %s", q, n, err, want)
		}
	}
	// Not a part of a label, nor a trailing dot.
	for _, q := range []string{"x86-01.iad", "ppc", "ppc3.", "fedora.redhat.com"} {
		if n, err := ResolveName("host", q, names); err == nil {
			t.Errorf("%s → %q, want an error", q, n)
		}
	}
}

// TestHelpFitsBudget: help without arguments, for the caller who may run
// every command, is one line that fits an IRC message (so within any
// irc.max_lines) and points to help <command>.
func TestHelpFitsBudget(t *testing.T) {
	d, _ := newTestDispatcher(t)
	got := strings.TrimSpace(run(d, "alice", "help"))
	if strings.Contains(got, "\n") || len(got) > 400 || !strings.Contains(got, "help <command> for usage") {
		t.Errorf("help: %d bytes %q, want one line of at most 400 bytes pointing to help <command>", len(got), got)
	}
}

// TestCount: the plural only where it belongs.
func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0 entries", 1: "1 entry", 2: "2 entries"} {
		if got := Count(n, "entry", "entries"); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}

// FuzzDispatch feeds arbitrary lines through tokenizer, lookup and parser:
// nothing may panic, and whatever parses must contain no control character.
func FuzzDispatch(f *testing.F) {
	for _, s := range []string{"capacity ppc3 2", "hosts ppc*", "disable ppc3 a b c", "help capacity", "capacity ppc3 \x00",
		"cleanup x --older=3d --dry-run", "capacity ppc3 1e9", "host ü", "--older 3d"} {
		f.Add(s)
	}
	d, _ := newTestDispatcher(&testing.T{})
	spec := &Spec{Name: "cleanup", Args: []Arg{{Name: "builder", Type: HostName}, {Name: "nvr", Type: NVR, Optional: true, Variadic: true}},
		Flags: []Flag{{Name: "older", Type: Duration}, {Name: "dry-run", Bool: true}}}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := Tokenize(line)
		if err != nil {
			return
		}
		for _, w := range words {
			for _, r := range w {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("control character survived in %q", w)
				}
			}
		}
		if s, used := d.Catalogue().Lookup(words); s != nil {
			_, _ = Parse(s, words[used:])
		}
		if p, err := Parse(spec, words); err == nil {
			if b := p.Arg("builder"); !reHost.MatchString(b) {
				t.Fatalf("builder %q passed validation", b)
			}
		}
		_ = run(d, "alice", line)
	})
}

// TestHostsTable: hosts decides a table, not text: a column per fact,
// a row per host, in the database's order.
func TestHostsTable(t *testing.T) {
	d, _ := newTestDispatcher(t)
	ms := sayMessages(d, "alice", "#fedora-admin", "hosts ppc*")
	table := tableOf(t, ms)
	if got := ms[0].Lines; len(got) != 1 || got[0] != "2 hosts, 2 enabled, 1 ready" {
		t.Errorf("headline %q", got)
	}
	var names []string
	for _, c := range table.Columns {
		names = append(names, c.Name)
	}
	if want := "host enabled ready load capacity checked in"; strings.Join(names, " ") != want {
		t.Errorf("columns %q, want %q", names, want)
	}
	want := [][]string{{"ppc3.fedora.redhat.com", "yes", "yes", "1.5", "4", "2m ago"}, {"ppc2.fedora.redhat.com", "yes", "no", "0", "2", "never"}}
	if fmt.Sprint(table.Rows) != fmt.Sprint(want) {
		t.Errorf("rows %q, want %q", table.Rows, want)
	}
}
