package commands

import (
	"reflect"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/fleet"
)

func TestClassify(t *testing.T) {
	for name, want := range map[string]struct {
		kind string
		id   int64
	}{
		"f40-build-1001-55":           {kindKoji, 1001},
		"f40-build-1003-55-bootstrap": {kindKoji, 1003},
		"dist-f8-build-12-3":          {kindKoji, 12},
		"fedora-devel-i386-core-0123456789abcdef0123456789abcdef01234567": {kindPlague, 0},
		"lost+found":     {kindOther, 0},
		"f40-build-1001": {kindOther, 0},
		"cache":          {kindOther, 0},
	} {
		e := &entry{Name: name}
		e.classify()
		if e.Kind != want.kind || e.Buildroot != want.id {
			t.Errorf("%s: %s/%d, want %s/%d", name, e.Kind, e.Buildroot, want.kind, want.id)
		}
	}
}

func TestMountsUnder(t *testing.T) {
	var mounts []mount
	for _, p := range []string{"/", "/var/lib/mock", "/var/lib/mock/a-1-1/root/proc", "/var/lib/mock/a-1-1/root/dev/pts",
		"/var/lib/mock/a-1-1/root/dev", "/var/lib/mock/a-1-10/root/proc", "/var/lib/mock/a-1-1x"} {
		mounts = append(mounts, mount{Literal: p, Path: p})
	}
	var got []string
	for _, m := range mountsUnder("/var/lib/mock/a-1-1", mounts) {
		got = append(got, m.Path)
	}
	want := []string{"/var/lib/mock/a-1-1/root/dev/pts", "/var/lib/mock/a-1-1/root/proc", "/var/lib/mock/a-1-1/root/dev"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mountsUnder = %q, want %q (deepest first, no sibling prefixes)", got, want)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/mnt/a\040b`: "/mnt/a b", `/x\011y`: "/x\ty", `/plain`: "/plain", `/trail\04`: `/trail\04`, `/bs\134`: `/bs\`} {
		if got := fleet.UnescapeMountField(in); got != want {
			t.Errorf("UnescapeMountField(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{168 * time.Hour: "7d", 36 * time.Hour: "36h", 40 * time.Minute: "40m", 4 * time.Second: "4s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
