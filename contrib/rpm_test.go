package contrib

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rpmVersion is the version the test gives `make dist` and rpmbuild.
const rpmVersion = "0.1.0"

// rpmEntry is one file of `rpm -qlvp`.
type rpmEntry struct{ mode, owner, group string }

// buildRPM runs `make dist` and `rpmbuild -bb` on its tarball, as the
// spec's header says, and returns the binary package's path and the
// tarball's. --nodeps: Debian's rpm database knows nothing of golang or
// systemd-rpm-macros.
func buildRPM(t *testing.T) (pkg, tarball string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	top := t.TempDir()
	sources := filepath.Join(top, "SOURCES")
	if err := os.MkdirAll(sources, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(dir, name string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = cleanEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 4000))
		}
	}
	run("..", "make", "-s", "dist", "DISTDIR="+sources, "VERSION="+rpmVersion)
	// The payload is not compressed: what is tested is the package's
	// files, and compressing them took seconds.
	run(".", "rpmbuild", "-bb", "--nodeps",
		"--define", "_topdir "+top,
		"--define", "_binary_payload w.ufdio",
		"--define", "kojibot_version "+rpmVersion,
		"kojibot.spec")
	rpms, err := filepath.Glob(filepath.Join(top, "RPMS", "*", "kojibot-"+rpmVersion+"-*.rpm"))
	if err != nil || len(rpms) != 1 {
		t.Fatalf("rpmbuild made %q (%v); want one kojibot-%s package", rpms, err, rpmVersion)
	}
	return rpms[0], filepath.Join(sources, "kojibot-"+rpmVersion+".tar.gz")
}

// tail is the end of out, for a failure message.
func tail(out []byte, n int) []byte {
	if len(out) > n {
		return out[len(out)-n:]
	}
	return out
}

func TestRPM(t *testing.T) {
	t.Parallel() // the longest: the others that wait run beside it
	pkg, tarball := buildRPM(t)
	t.Run("tarball", func(t *testing.T) { checkTarball(t, tarball) })
	out, err := exec.Command("rpm", "-qlvp", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm -qlvp: %v\n%s", err, out)
	}
	got := map[string]rpmEntry{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 {
			t.Fatalf("rpm -qlvp line %q", line)
		}
		got[f[8]] = rpmEntry{f[0], f[2], f[3]}
	}
	const doc = "/usr/share/doc/kojibot/"
	want := map[string]rpmEntry{
		"/usr/bin/kojibot":                        {"-rwxr-xr-x", "root", "root"},
		"/usr/lib/systemd/system/kojibot.service": {"-rw-r--r--", "root", "root"},
		"/usr/lib/sysusers.d/kojibot.conf":        {"-rw-r--r--", "root", "root"},
		"/usr/lib/tmpfiles.d/kojibot.conf":        {"-rw-r--r--", "root", "root"},
		"/etc/kojibot":                            {"drwxr-x---", "root", "kojibot"},
		"/etc/kojibot/kojibot.yaml":               {"-rw-r-----", "root", "kojibot"},
		"/var/lib/kojibot":                        {"drwx------", "kojibot", "kojibot"},
		doc + "README.md":                         {"-rw-r--r--", "root", "root"},
		doc + "koji-db-grants.sql":                {"-rw-r--r--", "root", "root"},
		doc + "kojibot.yaml.example":              {"-rw-r--r--", "root", "root"},
		"/usr/share/licenses/kojibot/LICENSE":     {"-rw-r--r--", "root", "root"},
	}
	// The helper and its sudoers rule, for the Koji machines.
	for _, name := range []string{"kojibot-helper", "sudoers.kojibot"} {
		want[doc+name] = rpmEntry{"-rw-r--r--", "root", "root"}
	}
	for path, w := range want {
		if g, ok := got[path]; !ok {
			t.Errorf("%s is not in the package", path)
		} else if g != w {
			t.Errorf("%s: %s %s:%s, want %s %s:%s", path, g.mode, g.owner, g.group, w.mode, w.owner, w.group)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok && !strings.HasPrefix(path, "/usr/lib/.build-id") && path != strings.TrimSuffix(doc, "/") && path != "/usr/share/licenses/kojibot" {
			t.Errorf("unexpected file in the package: %s", path)
		}
	}
	if t.Failed() {
		t.Logf("rpm -qlvp:\n%s", out)
	}

	out, err = exec.Command("rpm", "-qp", "--queryformat", "%{LICENSE}", pkg).CombinedOutput()
	if err != nil || string(out) != "MIT" {
		t.Errorf("package licence: %v %q, want MIT", err, out)
	}
	out, err = exec.Command("rpm", "-qp", "--configfiles", pkg).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "/etc/kojibot/kojibot.yaml" {
		t.Errorf("config files: %v %q, want /etc/kojibot/kojibot.yaml", err, out)
	}
	out, err = exec.Command("rpm", "-qp", "--scripts", pkg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kojibot check-config --config /etc/kojibot/kojibot.yaml") {
		t.Errorf("%%post does not advise check-config: %v\n%s", err, out)
	}

	// What is inside: the unit as shipped, and a binary of that version.
	files := rpmContents(t, pkg)
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files["./usr/lib/systemd/system/kojibot.service"], unit) {
		t.Error("the packaged unit differs from contrib/kojibot.service")
	}
	license, err := os.ReadFile("../LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files["./usr/share/licenses/kojibot/LICENSE"], license) {
		t.Error("the packaged licence differs from LICENSE")
	}
	bin := filepath.Join(t.TempDir(), "kojibot")
	if err := os.WriteFile(bin, files["./usr/bin/kojibot"], 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "kojibot "+rpmVersion {
		t.Errorf("packaged kojibot version: %v %q, want \"kojibot %s\"", err, out, rpmVersion)
	}
}

// rpmContents reads the regular files of the package, with rpm2archive.
func rpmContents(t *testing.T, pkg string) map[string][]byte {
	t.Helper()
	in, err := os.Open(pkg)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command("rpm2archive", "-")
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	archive, err := cmd.Output()
	if err != nil {
		t.Fatalf("rpm2archive: %v\n%s", err, stderr.Bytes())
	}
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = data
		}
	}
}

// Bounds on `make dist`'s tarball (MiB). Most of it is the pure-Go SQLite
// of the state store (modernc.org/sqlite and modernc.org/libc: C
// translated for every platform, 126 MiB unpacked, about 25 of the 29.6
// MiB packed); the rest is 22 MiB unpacked, about 4 packed. With
// Dendrite's module graph vendored (a test tool in kojibot's go.mod) the
// tarball was 36.6 MiB and the rest 53.6 MiB unpacked.
const (
	maxTarball     = 33 << 20 // packed
	maxOutsideLibc = 30 << 20 // unpacked, outside vendor/modernc.org/
)

// testToolModules are module path prefixes of the test tools' module
// (tests/tools/go.mod) that the product does not use.
var testToolModules = []string{
	"github.com/matrix-org/dendrite",
	"github.com/blevesearch/",
	"github.com/nats-io/",
	"github.com/getsentry/",
	"github.com/google/licensecheck",
}

// checkTarball checks that `make dist`'s tarball vendors only the
// product's modules: none of the test tools' and nothing under
// tests/tools but its sources, and that it stays within its bounds.
func checkTarball(t *testing.T, tarball string) {
	st, err := os.Stat(tarball)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > maxTarball {
		t.Errorf("%s is %.1f MiB, want at most %d MiB", filepath.Base(tarball), float64(st.Size())/(1<<20), maxTarball>>20)
	}
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	top := "kojibot-" + rpmVersion + "/"
	var outside int64
	var modules []byte
	vendored := map[string]int{} // test tool module prefix → files vendored
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, top)
		if !strings.HasPrefix(name, "vendor/modernc.org/") {
			outside += h.Size
		}
		switch {
		case name == "vendor/modules.txt":
			if modules, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(name, "tests/tools/") && strings.Contains(name, "/vendor/"):
			t.Errorf("the tarball vendors the test tools' modules: %s", name)
		case strings.HasPrefix(name, "vendor/"):
			for _, m := range testToolModules {
				if strings.HasPrefix(strings.TrimPrefix(name, "vendor/"), m) {
					vendored[m]++
				}
			}
		}
	}
	for m, n := range vendored {
		t.Errorf("the tarball vendors a test tool's module: %d files of vendor/%s", n, m)
	}
	if outside > maxOutsideLibc {
		t.Errorf("the tarball holds %.1f MiB (unpacked) outside vendor/modernc.org, want at most %d MiB", float64(outside)/(1<<20), maxOutsideLibc>>20)
	}
	if len(modules) == 0 {
		t.Fatal("the tarball has no vendor/modules.txt")
	}
	for _, line := range strings.Split(string(modules), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "#" {
			continue
		}
		for _, m := range testToolModules {
			if strings.HasPrefix(f[1], m) {
				t.Errorf("vendor/modules.txt holds a test tool's module: %s", line)
			}
		}
	}
}
