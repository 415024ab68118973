package commands

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/acl"
)

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

// TestFlagAccessors: a flag's value is read through a typed accessor that
// reports a bad value instead of dropping it (a zero duration would make
// `cleanup --older` plan everything).
func TestFlagAccessors(t *testing.T) {
	p := &Parsed{Flags: map[string]string{"older": "bogus", "dry-run": "true"}}
	if _, err := p.Duration("older", time.Hour); err == nil {
		t.Error("Duration of a bad value: no error")
	}
	if d, err := p.Duration("since", time.Hour); err != nil || d != time.Hour {
		t.Errorf("Duration of a missing flag = %v, %v; want the default", d, err)
	}
	p.Flags["older"] = "7d"
	if d, err := p.Duration("older", time.Hour); err != nil || d != 7*24*time.Hour {
		t.Errorf("Duration(7d) = %v, %v", d, err)
	}
	if !p.Bool("dry-run") || p.Bool("all") {
		t.Error("Bool: wrong")
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
