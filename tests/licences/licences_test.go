// Package licences checks what the built kojibot binary links: the licence
// of every Go module in it (classified from the module's licence files
// with github.com/google/licensecheck, run from the test tools' module),
// that docs/licences.md lists exactly those modules, and that no test
// tool's module (Dendrite and what it pulls in) reaches the binary or
// kojibot's go.mod.
//
// After a dependency change, `go test ./tests/licences -update` rewrites
// docs/licences.md from what it finds; the check still fails on a licence
// that is not allowed.
package licences

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// root is the kojibot module's root, from this package's directory.
const root = "../.."

// docPath is the list of the binary's modules and their licences.
const docPath = root + "/docs/licences.md"

var update = flag.Bool("update", false, "rewrite docs/licences.md from the modules found")

// allowed are the licences (SPDX IDs) a module linked into kojibot may
// carry.
var allowed = map[string]bool{
	"MIT":          true,
	"BSD-2-Clause": true,
	"BSD-3-Clause": true,
	"Apache-2.0":   true,
	"MPL-2.0":      true,
	"ISC":          true,
}

// minCover is how much of a licence file the recognised licences must
// cover; the rest of a file below it could be another licence.
const minCover = 80.0

// notLicences are licence files that the classifier cannot cover and that
// were read by a person: module path → file name → why it is fine. A new
// version of such a module shows up in docs/licences.md and is read again.
var notLicences = map[string]map[string]string{
	"modernc.org/memory": {
		"LICENSE-LOGO": "a link to the project logo's source, no licence terms",
	},
	"modernc.org/sqlite": {
		"LICENSE-SQLITE":       "SQLite's dedication to the public domain",
		"LICENSE-3RD-PARTY.md": "an index of the module graph's licences (tables, headings) with their texts; each licence in it is classified and checked",
	},
	"modernc.org/libc": {
		"LICENSE-3RD-PARTY.md": "notices of Go, musl, go-netdb and nixpkgs with headings around their texts; each licence in it is classified and checked",
	},
}

// forbidden are module path prefixes of the test tools (Dendrite and what
// it brings) that must reach neither the binary nor kojibot's go.mod.
var forbidden = []string{
	"github.com/matrix-org/dendrite",
	"github.com/blevesearch/",
	"github.com/nats-io/",
	"github.com/getsentry/",
	"github.com/google/licensecheck",
}

// module is one line of the classifier's output (tests/tools/licences).
type module struct {
	Path, Version string
	Licences      []string // licence IDs found in its licence files
	Files         []scanned
}

// scanned is one licence file of a module as the classifier saw it.
type scanned struct {
	Name     string
	Percent  float64 // share of the text the recognised licences cover
	Licences []string
}

// licence is how docs/licences.md writes a module's licences.
func (m module) licence() string { return strings.Join(m.Licences, ", ") }

// buildKojibot builds cmd/kojibot into a temporary directory.
func buildKojibot(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kojibot")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kojibot")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// classify runs the licence classifier of the test tools' module on bin.
func classify(t *testing.T, ctx context.Context, bin string) []module {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "go", "run", "./licences", "-main", abs, bin)
	cmd.Dir = filepath.Join(root, "tests", "tools")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tests/tools/licences: %v\n%s", err, stderr.Bytes())
	}
	var mods []module
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m module
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("tests/tools/licences output: %v\n%s", err, out)
		}
		mods = append(mods, m)
	}
	if len(mods) < 2 {
		t.Fatalf("tests/tools/licences found %d modules:\n%s", len(mods), out)
	}
	return mods
}

// problems are what is wrong with the licences of m: a licence not
// allowed, none found, or a licence file mostly unrecognised.
func problems(m module) []string {
	var p []string
	if len(m.Licences) == 0 {
		p = append(p, "no licence found")
	}
	for _, id := range m.Licences {
		if !allowed[id] {
			p = append(p, "licence "+id+" is not allowed")
		}
	}
	for _, f := range m.Files {
		if f.Percent < minCover && notLicences[m.Path][f.Name] == "" {
			p = append(p, fmt.Sprintf("%s: only %.0f%% of it is a known licence (%s)", f.Name, f.Percent, strings.Join(f.Licences, ", ")))
		}
	}
	return p
}

func TestLicences(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := buildKojibot(t, ctx)
	mods := classify(t, ctx, bin)

	self, deps := mods[0], mods[1:]
	if self.Path != "github.com/fedora-infra/kojibot" || self.licence() != "MIT" || len(self.Files) != 1 || self.Files[0].Name != "LICENSE" {
		t.Errorf("kojibot's own licence: %+v, want MIT in LICENSE", self)
	}
	license, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	if err != nil || !bytes.Contains(license, []byte("Copyright (c) 2026 the kojibot authors")) {
		t.Errorf("LICENSE has no copyright line of the kojibot authors (%v)", err)
	}
	for _, m := range mods {
		for _, p := range problems(m) {
			t.Errorf("%s %s: %s", m.Path, m.Version, p)
		}
	}

	if *update {
		if err := os.WriteFile(docPath, []byte(licencesDoc(deps)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	listed := docRows(string(doc))
	var found []string
	for _, m := range deps {
		found = append(found, m.Path+" "+m.Version+" "+m.licence())
	}
	for _, row := range found {
		if !slices.Contains(listed, row) {
			t.Errorf("docs/licences.md does not list %q (go test ./tests/licences -update)", row)
		}
	}
	for _, row := range listed {
		if !slices.Contains(found, row) {
			t.Errorf("docs/licences.md lists %q, which is not in the binary as that", row)
		}
	}
}

// TestPolicy: the check refuses what it must (a guard on the test itself).
func TestPolicy(t *testing.T) {
	for _, c := range []struct {
		m  module
		ok bool
	}{
		{module{Path: "a", Licences: []string{"MIT"}, Files: []scanned{{"LICENSE", 98, []string{"MIT"}}}}, true},
		{module{Path: "a", Licences: []string{"MPL-2.0", "BSD-3-Clause"}}, true},
		{module{Path: "a", Licences: []string{"GPL-3.0"}}, false},
		{module{Path: "a", Licences: []string{"MIT", "AGPL-3.0"}}, false},
		{module{Path: "a", Licences: []string{"LGPL-2.1"}}, false},
		{module{Path: "a"}, false},
		// Mostly unrecognised text: it could be another licence.
		{module{Path: "a", Licences: []string{"MIT"}, Files: []scanned{{"LICENSE", 40, []string{"MIT"}}}}, false},
		{module{Path: "a", Licences: []string{"MIT"}, Files: []scanned{{"LICENSE-SQLITE", 0, nil}}}, false},
		// The same file, read by a person.
		{module{Path: "modernc.org/sqlite", Licences: []string{"MIT"}, Files: []scanned{{"LICENSE-SQLITE", 0, nil}}}, true},
	} {
		if p := problems(c.m); (len(p) == 0) != c.ok {
			t.Errorf("%+v: problems %q, want allowed %v", c.m, p, c.ok)
		}
	}
}

func TestNoTestToolModules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	info, err := buildinfo.ReadFile(buildKojibot(t, ctx))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range info.Deps {
		if isForbidden(d.Path) {
			t.Errorf("the binary links %s %s, a test tool's module", d.Path, d.Version)
		}
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "all")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if isForbidden(line) {
			t.Errorf("kojibot's module graph holds %s, a test tool's module (it belongs in tests/tools/go.mod)", line)
		}
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "tool" {
			t.Errorf("go.mod has a tool directive: %q (test tools go in tests/tools/go.mod)", line)
		}
	}
}

// isForbidden tells whether a module path (maybe followed by a version)
// is a test tool's.
func isForbidden(path string) bool {
	for _, p := range forbidden {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// docRows are the table rows of docs/licences.md, as "path version licence".
func docRows(doc string) []string {
	var rows []string
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if len(cells) != 3 {
			continue
		}
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		rows = append(rows, strings.Join(cells, " "))
	}
	return rows
}

// licencesDoc is docs/licences.md for deps.
func licencesDoc(deps []module) string {
	var b strings.Builder
	b.WriteString(`# Licences of the modules in kojibot

kojibot is MIT-licensed (LICENSE). The kojibot binary links the Go standard
library (BSD-3-Clause) and the Go modules below; the licence column is what
github.com/google/licensecheck finds in each module's licence files
(LICENSE*, LICENCE*, COPYING* at its root). A module linked into kojibot
may carry only MIT, BSD-2-Clause, BSD-3-Clause, Apache-2.0, MPL-2.0 or
ISC: ` + "`go test ./tests/licences`" + ` builds the binary, classifies its modules
and fails on any other licence, or when this list differs from the
binary's modules. After a dependency change, ` + "`go test ./tests/licences -update`" + `
rewrites this file.

Files the classifier cannot cover, read by a person: modernc.org/sqlite's
LICENSE-SQLITE (SQLite's dedication to the public domain) and the index of
its LICENSE-3RD-PARTY.md, modernc.org/libc's LICENSE-3RD-PARTY.md (notices
of Go, musl, go-netdb and nixpkgs), and modernc.org/memory's LICENSE-LOGO
(a link to its logo's source). modernc.org/sqlite's licence column lists
every licence named in its third-party index, which also covers modules
used only by its own tests.

| module | version | licence |
|---|---|---|
`)
	for _, m := range deps {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", m.Path, m.Version, m.licence())
	}
	return b.String()
}
