package commands

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/config"
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

func TestDatabaseDown(t *testing.T) {
	d, db := newTestDispatcher(t)
	db.down = true
	got := run(d, "alice", "capacity ppc3 2")
	if !strings.HasPrefix(got, "error:") || !strings.Contains(got, "unavailable") {
		t.Fatalf("reply %q, want an error: saying the database is unavailable", got)
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

// TestCommandDeadline: a command that is not a job gets commands.timeout
// to answer; a hung database does not hold the worker beyond it.
func TestCommandDeadline(t *testing.T) {
	cfg := config.Default()
	cfg.Commands.Timeout = 200 * time.Millisecond
	db := &fakeDB{hosts: testHosts(time.Now()), hang: true}
	d := New(Deps{Config: cfg, DB: db, ACL: fakeACL{members: map[string]bool{"alice": true}}})
	defer d.Close()
	done := make(chan string, 1)
	go func() { done <- run(d, "alice", "hosts") }()
	select {
	case got := <-done:
		if !strings.HasPrefix(got, "error: ") || !strings.Contains(got, "did not finish within 200ms") {
			t.Errorf("reply %q, want an error naming the deadline", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hosts on a hung database did not return within 10s (commands.timeout is 200ms)")
	}
}

// TestExecAuditNamesTheUnixUser: a command run by kojibot exec records the
// Unix user, the login uid and its user, and SUDO_USER labelled as claimed
// (anyone can set it), never as the sudo user.
func TestExecAuditNamesTheUnixUser(t *testing.T) {
	var buf bytes.Buffer
	d := New(Deps{DB: &fakeDB{hosts: testHosts(time.Now())}, ACL: fakeACL{members: map[string]bool{"alice": true}},
		Audit: slog.New(slog.NewJSONHandler(&buf, nil))})
	defer d.Close()
	d.Handle(context.Background(), Request{Transport: TransportExec, TrustedFASUser: "alice", LocalUser: "root", LoginUID: "1000", LoginUser: "kevin",
		SudoUser: "nirik", Place: "exec", Text: "hosts"}, &recorder{})
	for _, want := range []string{`"unix_user":"root"`, `"login_uid":"1000"`, `"login_user":"kevin"`,
		`"sudo_user_claimed":"nirik"`, `"as_fas_user":"alice"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("audit log lacks %s:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), `"sudo_user":`) {
		t.Errorf("audit log records SUDO_USER as the sudo user:\n%s", buf.String())
	}
}

// TestGateRefusesFleetCommandsWithoutSSH: without ssh: and hosts:, every
// command the catalogue marks NeedsFleet is refused by the dispatcher
// itself, with one message, before its handler runs; the others are not.
func TestGateRefusesFleetCommandsWithoutSSH(t *testing.T) {
	d, _ := newTestDispatcher(t)
	lines := map[string]string{
		"disk": "disk all", "cleanup": "cleanup xenbuilder2", "restart": "restart builders",
		"reboot": "reboot xenbuilder2", "memory": "memory xenbuilder2", "override": "override f41 foo-1.0-1",
	}
	fleetCommands := 0
	for _, name := range d.Catalogue().Names() {
		if !d.Catalogue().Spec(name).NeedsFleet {
			continue
		}
		fleetCommands++
		line, ok := lines[name]
		if !ok {
			t.Errorf("%s needs the fleet but has no line in this test", name)
			continue
		}
		if got := run(d, "alice", line); !strings.Contains(got, "error: SSH is not configured") {
			t.Errorf("%s: %q, want the dispatcher's refusal", line, got)
		}
	}
	if fleetCommands != len(lines) {
		t.Errorf("%d commands need the fleet, want %d", fleetCommands, len(lines))
	}
	if got := run(d, "alice", "hosts"); strings.Contains(got, "SSH is not configured") {
		t.Errorf("hosts, which needs no SSH, was refused: %q", got)
	}
}

// callerACL records the callers it is asked about.
type callerACL struct{ callers *[]acl.Caller }

func (a callerACL) Authorize(ctx context.Context, c acl.Caller, command string, readOnly bool) acl.Decision {
	*a.callers = append(*a.callers, c)
	return acl.Decision{Allowed: true, FASUser: "alice", Rule: "test"}
}

func (a callerACL) MemberOf(ctx context.Context, user string) ([]string, error) { return nil, nil }

// TestTransportDecidesIdentityRules: whether a caller is resolved by the
// Matrix rules is the request's Transport, never the look of its place;
// only exec's TrustedFASUser reaches the ACL as a trusted FAS user.
func TestTransportDecidesIdentityRules(t *testing.T) {
	var callers []acl.Caller
	d := New(Deps{DB: &fakeDB{hosts: testHosts(time.Now())}, ACL: callerACL{&callers}})
	for _, req := range []Request{
		{Transport: TransportIRC, Account: "alice", Place: "matrix:!looks:like.matrix", Text: "whoami"},
		{Transport: TransportMatrix, Account: "@alice:fedora.im", Place: "matrix:!abc:fedora.im", Text: "whoami"},
		{Transport: TransportExec, TrustedFASUser: "alice", Place: "exec", Text: "whoami"},
	} {
		d.Handle(context.Background(), req, &recorder{})
	}
	var asked []acl.Caller // each caller once, in order (whoami asks about every command)
	for _, c := range callers {
		if len(asked) == 0 || asked[len(asked)-1] != c {
			asked = append(asked, c)
		}
	}
	want := []acl.Caller{{Account: "alice"}, {Account: "@alice:fedora.im", Matrix: true}, {FASUser: "alice"}}
	if !reflect.DeepEqual(asked, want) {
		t.Errorf("the ACL was asked about %+v, want %+v", asked, want)
	}
}

// TestOneAuthorize: the commands ask the ACL in one place only
// (Dispatcher.authorize), so that every check follows one rule.
func TestOneAuthorize(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if strings.Contains(line, ".ACL.Authorize(") {
				calls = append(calls, fmt.Sprintf("%s:%d", f, i+1))
			}
		}
	}
	if len(calls) != 1 {
		t.Errorf("the ACL is asked at %v; want one place, Dispatcher.authorize", calls)
	}
}
