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
// spec's header says, and returns the binary package's path. --nodeps:
// Debian's rpm database knows nothing of golang or systemd-rpm-macros.
func buildRPM(t *testing.T) string {
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
	run(".", "rpmbuild", "-bb", "--nodeps",
		"--define", "_topdir "+top,
		"--define", "kojibot_version "+rpmVersion,
		"kojibot.spec")
	rpms, err := filepath.Glob(filepath.Join(top, "RPMS", "*", "kojibot-"+rpmVersion+"-*.rpm"))
	if err != nil || len(rpms) != 1 {
		t.Fatalf("rpmbuild made %q (%v); want one kojibot-%s package", rpms, err, rpmVersion)
	}
	return rpms[0]
}

// tail is the end of out, for a failure message.
func tail(out []byte, n int) []byte {
	if len(out) > n {
		return out[len(out)-n:]
	}
	return out
}

func TestRPM(t *testing.T) {
	pkg := buildRPM(t)
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
		if _, ok := want[path]; !ok && !strings.HasPrefix(path, "/usr/lib/.build-id") && path != strings.TrimSuffix(doc, "/") {
			t.Errorf("unexpected file in the package: %s", path)
		}
	}
	if t.Failed() {
		t.Logf("rpm -qlvp:\n%s", out)
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
