package matrixhs

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// moduleDir is the kojibot module's root, from this package's directory.
const moduleDir = "../../.."

// TestVersionPinned: the test tools' module pins the Dendrite release that
// Version (and so BinDir, the cache) names, and kojibot's own module does
// not require Dendrite at all.
func TestVersionPinned(t *testing.T) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/matrix-org/dendrite")
	cmd.Dir = ToolsDir(moduleDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m in %s: %v\n%s", cmd.Dir, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != Version {
		t.Errorf("tests/tools/go.mod pins dendrite %s, Version is %s", got, Version)
	}
	cmd = exec.Command("go", "list", "-m", "all")
	cmd.Dir = moduleDir
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "github.com/matrix-org/dendrite ") {
			t.Errorf("kojibot's go.mod requires %s", line)
		}
	}
}

// TestBuild builds the Dendrite commands from the test tools' module into
// a new directory (not the shared cache) and asks the server its version.
func TestBuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	out := t.TempDir()
	if err := build(ctx, moduleDir, out); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		if _, err := exec.LookPath(filepath.Join(out, c)); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
	v, err := exec.CommandContext(ctx, filepath.Join(out, "dendrite"), "-version").CombinedOutput()
	if err != nil {
		t.Fatalf("dendrite -version: %v\n%s", err, v)
	}
	if !strings.Contains(string(v), strings.TrimPrefix(Version, "v")) {
		t.Errorf("dendrite -version: %q, want %s", v, Version)
	}
}
