package realkoji

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Version is the Koji release the harness runs.
const Version = "1.35.3"

// Tarball is the file name of the release: an unmodified `git archive` of
// the upstream tag, with its checksum in Tarball + ".sha256".
const Tarball = "koji-" + Version + ".tar.gz"

// UpstreamRepo, UpstreamTag and UpstreamCommit are where a machine with
// internet gets the release when no tarball is at hand: a shallow clone of
// the tag, which must be that commit.
const (
	UpstreamRepo   = "https://github.com/koji-project/koji.git"
	UpstreamTag    = "koji-" + Version
	UpstreamCommit = "dd619e21ddc4cff7d188eb5895a015778b94a680"
)

// vendorDir is where, relative to a directory above the repository, the
// shared third-party sources are kept.
const vendorDir = "shared/vendor"

// fallbackVendor is the machine-wide copy, looked at last.
const fallbackVendor = "/work/shared/vendor"

// RepoRoot is the root of this source tree.
func RepoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("realkoji: cannot locate the source tree")
	}
	return filepath.Abs(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// TarballCandidates are the places, in order, where Source looks for the
// release tarball: shared/vendor in each directory above the repository
// root (the first being <root>/../shared/vendor), then /work/shared/vendor.
func TarballCandidates(root string) []string {
	var out []string
	seen := map[string]bool{}
	for d := filepath.Dir(root); ; d = filepath.Dir(d) {
		p := filepath.Join(d, vendorDir, Tarball)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	if p := filepath.Join(fallbackVendor, Tarball); !seen[p] {
		out = append(out, p)
	}
	return out
}

// Source makes an unpacked Koji tree available in dest (created; it must
// not exist or be empty) and returns where the tree is: $KOJI_SRC itself
// when set (an unpacked tree, used in place), else the first tarball of
// TarballCandidates, checked against its .sha256, unpacked into dest, else
// a shallow clone of UpstreamTag into dest, checked to be UpstreamCommit. A
// tarball whose checksum is missing or wrong is an error, not a reason to
// look further; no source at all is an error.
func Source(ctx context.Context, dest string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return findSource(ctx, dest, os.Getenv("KOJI_SRC"), TarballCandidates(root), clone)
}

// findSource is Source with its inputs given: the value of KOJI_SRC, the
// tarball candidates in order, and how to clone the release.
func findSource(ctx context.Context, dest, kojiSrc string, candidates []string, clone func(context.Context, string) error) (string, error) {
	if kojiSrc != "" {
		if err := checkTree(kojiSrc); err != nil {
			return "", fmt.Errorf("realkoji: KOJI_SRC=%s: %w", kojiSrc, err)
		}
		return filepath.Abs(kojiSrc)
	}
	for _, tb := range candidates {
		if _, err := os.Stat(tb); err != nil {
			continue
		}
		return dest, unpack(ctx, tb, dest)
	}
	if err := clone(ctx, dest); err != nil {
		return "", fmt.Errorf("realkoji: no Koji %s source: KOJI_SRC is not set, no tarball at %s, and %w",
			Version, strings.Join(candidates, ", "), err)
	}
	return dest, nil
}

// checkTree checks that dir looks like an unpacked Koji tree.
func checkTree(dir string) error {
	for _, f := range []string{"kojihub/app/kojiapp.py", "schemas/schema.sql", "cli/koji", "koji/__init__.py"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("not a Koji source tree: %w", err)
		}
	}
	return nil
}

// VerifyTarball checks tb against the checksum in tb.sha256 (sha256sum's
// format).
func VerifyTarball(tb string) error {
	sumFile, err := os.ReadFile(tb + ".sha256")
	if err != nil {
		return fmt.Errorf("realkoji: checksum of %s: %w", tb, err)
	}
	fields := strings.Fields(string(sumFile))
	if len(fields) == 0 || len(fields[0]) != 64 {
		return fmt.Errorf("realkoji: %s.sha256 holds no SHA-256", tb)
	}
	f, err := os.Open(tb)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("realkoji: %s: %w", tb, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, fields[0]) {
		return fmt.Errorf("realkoji: %s has SHA-256 %s, %s.sha256 says %s", tb, got, tb, fields[0])
	}
	return nil
}

// unpack checks tb and extracts it into dest, without its top directory.
func unpack(ctx context.Context, tb, dest string) error {
	if err := VerifyTarball(tb); err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "tar", "-xzf", tb, "-C", dest, "--strip-components=1", "--no-same-owner")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("realkoji: unpack %s: %w: %s", tb, err, bytes.TrimSpace(out))
	}
	return checkTree(dest)
}

// clone shallow-clones UpstreamTag into dest and checks its commit.
func clone(ctx context.Context, dest string) error {
	if _, err := exec.LookPath("git"); err != nil {
		return errors.New("git is not installed to clone it")
	}
	cmd := exec.CommandContext(ctx, "git", "clone", "--quiet", "--depth", "1", "--branch", UpstreamTag, UpstreamRepo, dest)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cloning %s failed: %w: %s", UpstreamRepo, err, bytes.TrimSpace(out))
	}
	out, err := exec.CommandContext(ctx, "git", "-C", dest, "rev-parse", "HEAD").Output()
	if err != nil {
		return fmt.Errorf("git rev-parse in the clone: %w", err)
	}
	if got := strings.TrimSpace(string(out)); got != UpstreamCommit {
		return fmt.Errorf("the clone of %s is commit %s, want %s", UpstreamTag, got, UpstreamCommit)
	}
	return checkTree(dest)
}
