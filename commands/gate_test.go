package commands

import (
	"strings"
	"testing"
	"time"
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
