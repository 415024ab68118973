package main

import (
	"os"
	"os/user"
	"path/filepath"
	"testing"
)

// TestLoginUser reads the kernel's login uid as /proc/self/loginuid gives
// it, and names its user.
func TestLoginUser(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root, err := user.LookupId("0")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, uid, name string
	}{
		{write("root", "0"), "0", root.Username},
		{write("unset", "4294967295"), "unset", ""},
		{write("nameless", "4000000"), "4000000", ""},
		{write("garbage", "alice\n"), "unreadable", ""},
		{write("negative", "-1"), "unreadable", ""},
		{filepath.Join(dir, "missing"), "unreadable", ""},
	}
	for _, tt := range tests {
		uid, name := loginUser(tt.path)
		if uid != tt.uid || name != tt.name {
			t.Errorf("loginUser(%s) = %q, %q; want %q, %q", filepath.Base(tt.path), uid, name, tt.uid, tt.name)
		}
	}
	// This process's own: a number or "unset", never unreadable on Linux.
	if uid, _ := loginUser(procLoginUID); uid == "unreadable" {
		t.Errorf("%s is unreadable", procLoginUID)
	}
}
