package commands

import (
	"testing"
	"time"
)

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
