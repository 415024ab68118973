package commands

import (
	"slices"
	"testing"
)

func TestNulRecords(t *testing.T) {
	if recs, err := nulRecords("a\x00b c\x00"); err != nil || !slices.Equal(recs, []string{"a", "b c"}) {
		t.Errorf("nulRecords = %q, %v", recs, err)
	}
	for _, cut := range []string{"a\x00f40-build-10", "f40", "a\x00\x00"} {
		if recs, err := nulRecords(cut); err == nil {
			t.Errorf("nulRecords(%q) = %q, want an error", cut, recs)
		}
	}
}

func TestParseMounts(t *testing.T) {
	ms, err := parseMounts("/dev/root / ext4 rw 0 0\n" +
		"proc /var/lib/mock/a-1-1/root/proc\\040(deleted) proc rw 0 0\n" +
		"none /var/lib/mock/b\\040c tmpfs rw 0 0\n" +
		"none /var/lib/mock/d-2-2\\040(deleted) tmpfs rw 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []mount{
		{Literal: "/", Path: "/"},
		{Literal: "/var/lib/mock/a-1-1/root/proc (deleted)", Path: "/var/lib/mock/a-1-1/root/proc", Deleted: true},
		{Literal: "/var/lib/mock/b c", Path: "/var/lib/mock/b c"},
		{Literal: "/var/lib/mock/d-2-2 (deleted)", Path: "/var/lib/mock/d-2-2", Deleted: true},
	}
	if !slices.Equal(ms, want) {
		t.Fatalf("parseMounts = %+v, want %+v", ms, want)
	}
	// A deleted mount point on the entry itself belongs to the entry; it
	// is unmounted by its stripped path only (the literal one is a
	// sibling, outside the entry).
	got := mountsUnder("/var/lib/mock/d-2-2", ms)
	if len(got) != 1 || !slices.Equal(got[0].targets("/var/lib/mock/d-2-2"), []string{"/var/lib/mock/d-2-2"}) {
		t.Errorf("mounts of d-2-2: %+v", got)
	}
	got = mountsUnder("/var/lib/mock/a-1-1", ms)
	if len(got) != 1 || !slices.Equal(got[0].targets("/var/lib/mock/a-1-1"),
		[]string{"/var/lib/mock/a-1-1/root/proc (deleted)", "/var/lib/mock/a-1-1/root/proc"}) {
		t.Errorf("mounts of a-1-1: %+v", got)
	}

	for name, text := range map[string]string{
		"cut line":     "/dev/root / ext4 rw 0 0\nnone /var/lib/mock/a-1-1/ro",
		"short line":   "/dev/root / ext4 rw 0 0\nnone /var/lib/mock/a-1-1/root\n",
		"empty output": "",
	} {
		if ms, err := parseMounts(text); err == nil {
			t.Errorf("%s: parseMounts = %+v, want an error", name, ms)
		}
	}
}
