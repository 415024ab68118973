package commands

import (
	"strings"
	"testing"
)

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
