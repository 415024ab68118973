package builders

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestServiceUnits: a service with a unit file runs its command (here a
// daemon with a child, dropped to nobody as kojid is) instead of the
// stand-in; stop ends the daemon and its child, start runs it again, and a
// rebooted machine runs it again. SetServiceCommand gives a running
// machine's service a unit from its next start.
func TestServiceUnits(t *testing.T) {
	const unit = `exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- sh -c 'sleep 3001 & exec sleep 3002'`
	f := startFarm(t, []Spec{{Name: "b1", MockMiB: 4, BuildMiB: 4, Services: []string{"kojid", "other"},
		ServiceCommands: map[string]string{"kojid": unit}}})
	procs := func(pattern string) string {
		t.Helper()
		out, _ := f.Exec("b1", "pgrep -a -f '^sleep 300[12]$|"+pattern+"' | sort -k2; true")
		return strings.TrimSpace(out)
	}
	waitProcs := func(what, pattern string, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := procs(pattern)
			n := 0
			if got != "" {
				n = len(strings.Split(got, "\n"))
			}
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: processes %q, want %d", what, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitProcs("at boot", "^$", 2)
	if out, err := f.Exec("b1", "ps -o user= -p $(pgrep -d, -f '^sleep 300') | sort -u"); err != nil || strings.TrimSpace(out) != "nobody" {
		t.Errorf("the unit's processes run as %q (%v), want nobody", out, err)
	}
	if out, err := f.Service("b1", "is-active", "kojid"); err != nil || strings.TrimSpace(out) != "active" {
		t.Errorf("is-active kojid: %q %v", out, err)
	}
	// The stand-in still serves the other service.
	if out, err := f.Exec("b1", "pgrep -f '^fakesvc:other'"); err != nil || strings.TrimSpace(out) == "" {
		t.Errorf("the stand-in of other is not running: %q %v", out, err)
	}
	if out, err := f.Service("b1", "stop", "kojid"); err != nil {
		t.Fatalf("stop: %v %s", err, out)
	}
	waitProcs("after stop", "^$", 0)
	if out, err := f.Service("b1", "is-active", "kojid"); err == nil || strings.TrimSpace(out) != "inactive" {
		t.Errorf("is-active after stop: %q %v", out, err)
	}
	if out, err := f.Service("b1", "start", "kojid"); err != nil {
		t.Fatalf("start: %v %s", err, out)
	}
	waitProcs("after start", "^$", 2)

	// A reboot: the unit is the machine's, not its tmpfs's.
	if err := f.StopHost("b1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.StartHost(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	waitProcs("after the reboot", "^$", 2)

	// A unit given to a running machine: from the next start.
	if err := f.SetServiceCommand("b1", "other", "exec sleep 3003"); err != nil {
		t.Fatal(err)
	}
	if out, err := f.Exec("b1", "pgrep -f '^fakesvc:other'"); err != nil || strings.TrimSpace(out) == "" {
		t.Errorf("SetServiceCommand restarted other: %q %v", out, err)
	}
	if out, err := f.Service("b1", "restart", "other"); err != nil {
		t.Fatalf("restart other: %v %s", err, out)
	}
	waitProcs("other with its unit", "^sleep 3003$", 3)
	if out, _ := f.Exec("b1", "pgrep -f '^fakesvc:other' || true"); strings.TrimSpace(out) != "" {
		t.Errorf("the stand-in of other still runs: %q", out)
	}
	if err := f.SetServiceCommand("b1", "../x", "true"); err == nil {
		t.Errorf("SetServiceCommand took the service name ../x")
	}
}
