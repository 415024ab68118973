package realkoji

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTarballCandidates: shared/vendor beside the repository first, then
// in every directory above it, then the machine-wide copy, each once.
func TestTarballCandidates(t *testing.T) {
	got := TarballCandidates("/work/wt/kojihub")
	want := []string{
		"/work/wt/shared/vendor/" + Tarball,
		"/work/shared/vendor/" + Tarball,
		"/shared/vendor/" + Tarball,
	}
	if !slices.Equal(got, want) {
		t.Errorf("TarballCandidates(/work/wt/kojihub) = %v, want %v", got, want)
	}
	got = TarballCandidates("/srv/ci/kojibot")
	want = []string{
		"/srv/ci/shared/vendor/" + Tarball,
		"/srv/shared/vendor/" + Tarball,
		"/shared/vendor/" + Tarball,
		"/work/shared/vendor/" + Tarball,
	}
	if !slices.Equal(got, want) {
		t.Errorf("TarballCandidates(/srv/ci/kojibot) = %v, want %v", got, want)
	}
}

// TestSourceFoundFromThisTree: the shared hub's tree came from a checked
// tarball found from this repository (KOJI_SRC unset) and is a Koji tree.
func TestSourceFoundFromThisTree(t *testing.T) {
	if os.Getenv("KOJI_SRC") != "" {
		t.Fatal("run this test without KOJI_SRC")
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	found := ""
	for _, c := range TarballCandidates(root) {
		if _, err := os.Stat(c); err == nil {
			found = c
			break
		}
	}
	if found == "" {
		t.Fatalf("no release tarball in %v", TarballCandidates(root))
	}
	if err := VerifyTarball(found); err != nil {
		t.Fatal(err)
	}
	if err := checkTree(hub.Src); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hub.Src, hub.Dir) {
		t.Errorf("the tree %s is not unpacked in the hub's temp dir %s", hub.Src, hub.Dir)
	}
}

// copyTarball puts a copy of the release (and sum, when not empty, as its
// .sha256) in a new shared/vendor and returns the copy's path.
func copyTarball(t *testing.T, sum string, corrupt bool) string {
	t.Helper()
	root, _ := RepoRoot()
	var orig string
	for _, c := range TarballCandidates(root) {
		if _, err := os.Stat(c); err == nil {
			orig = c
			break
		}
	}
	b, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	if corrupt {
		b[len(b)/2] ^= 0xff
	}
	dir := filepath.Join(t.TempDir(), "shared", "vendor")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tb := filepath.Join(dir, Tarball)
	if err := os.WriteFile(tb, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if sum != "" {
		if sum == "orig" {
			s, err := os.ReadFile(orig + ".sha256")
			if err != nil {
				t.Fatal(err)
			}
			sum = string(s)
		}
		if err := os.WriteFile(tb+".sha256", []byte(sum), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return tb
}

var errNoNet = errors.New("no network here")

func noClone(context.Context, string) error { return errNoNet }

// TestFindSource: the order KOJI_SRC, tarballs, clone; a tarball with a
// wrong or missing checksum is an error rather than a reason to look
// further; nothing found is an error.
func TestFindSource(t *testing.T) {
	ctx := context.Background()
	good := copyTarball(t, "orig", false)

	dest := filepath.Join(t.TempDir(), "src")
	got, err := findSource(ctx, dest, "", []string{"/nonexistent/" + Tarball, good}, noClone)
	if err != nil || got != dest {
		t.Fatalf("findSource with a good tarball = %q, %v", got, err)
	}
	if err := checkTree(dest); err != nil {
		t.Error(err)
	}

	got, err = findSource(ctx, t.TempDir(), dest, []string{good}, noClone)
	if err != nil || got != dest {
		t.Errorf("KOJI_SRC=%s: findSource = %q, %v; want the tree itself", dest, got, err)
	}
	if _, err := findSource(ctx, t.TempDir(), t.TempDir(), []string{good}, noClone); err == nil || !strings.Contains(err.Error(), "KOJI_SRC") {
		t.Errorf("KOJI_SRC not a Koji tree: err = %v", err)
	}

	corrupt := copyTarball(t, "orig", true)
	if _, err := findSource(ctx, filepath.Join(t.TempDir(), "src"), "", []string{corrupt, good}, noClone); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("corrupt tarball: err = %v, want a checksum error", err)
	}
	nosum := copyTarball(t, "", false)
	if _, err := findSource(ctx, filepath.Join(t.TempDir(), "src"), "", []string{nosum, good}, noClone); err == nil || !strings.Contains(err.Error(), ".sha256") {
		t.Errorf("tarball without .sha256: err = %v, want an error", err)
	}

	cloned := ""
	got, err = findSource(ctx, "/x/src", "", []string{"/nonexistent/" + Tarball}, func(_ context.Context, d string) error { cloned = d; return nil })
	if err != nil || got != "/x/src" || cloned != "/x/src" {
		t.Errorf("no tarball: findSource = %q, %v (cloned into %q); want the clone", got, err, cloned)
	}
	if _, err := findSource(ctx, "/x/src", "", []string{"/nonexistent/" + Tarball}, noClone); !errors.Is(err, errNoNet) {
		t.Errorf("no source at all: err = %v, want an error", err)
	}
}
