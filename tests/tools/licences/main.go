// Command licences classifies the licence files of the Go modules linked
// into a binary, with github.com/google/licensecheck. It reads the module
// list from the binary's build information, finds each module in the
// module cache (`go mod download -json` gives its directory) and scans
// every licence file at the module's root (LICENSE*, LICENCE*, COPYING*).
// It prints one JSON object per module: path, version, the licence IDs
// found and, per file, how much of the text they cover. With -main DIR,
// the binary's main module comes first, classified from DIR (its source).
//
// Usage: licences [-main DIR] BINARY
package main

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/google/licensecheck"
)

// Module is the classification of one module of the binary.
type Module struct {
	Path     string   // module path as the binary records it
	Version  string   // module version
	Licences []string // licence IDs found in its licence files, sorted
	Files    []File   // the licence files scanned
}

// File is one scanned licence file.
type File struct {
	Name     string   // file name at the module's root
	Percent  float64  // share of the text the matched licences cover
	Licences []string // licence IDs matched in it
}

// licenceFile matches the names of licence files.
var licenceFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying)([-._].*)?$`)

func main() {
	mainDir := flag.String("main", "", "classify the main module from this `directory` too")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: licences [-main DIR] BINARY")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *mainDir); err != nil {
		fmt.Fprintln(os.Stderr, "licences:", err)
		os.Exit(1)
	}
}

// run classifies the modules of binary (and its main module from
// mainDir, if not empty) and prints them.
func run(binary, mainDir string) error {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	if mainDir != "" {
		m, err := classify(mainDir)
		if err != nil {
			return err
		}
		m.Path, m.Version = info.Main.Path, info.Main.Version
		if err := enc.Encode(m); err != nil {
			return err
		}
	}
	for _, dep := range info.Deps {
		mod := dep
		if dep.Replace != nil {
			mod = dep.Replace
		}
		dir, err := moduleDir(mod.Path, mod.Version)
		if err != nil {
			return err
		}
		m, err := classify(dir)
		if err != nil {
			return err
		}
		m.Path, m.Version = dep.Path, dep.Version
		if err := enc.Encode(m); err != nil {
			return err
		}
	}
	return nil
}

// moduleDir is the module's directory in the module cache, downloaded
// (and its checksum verified) if it is not there.
func moduleDir(path, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", path+"@"+version)
	// Outside any module, so that no go.mod or go.sum is read or written.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %v\n%s%s", path, version, err, out, stderr.Bytes())
	}
	var d struct{ Dir, Error string }
	if err := json.Unmarshal(out, &d); err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %v", path, version, err)
	}
	if d.Error != "" || d.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: no directory: %s", path, version, d.Error)
	}
	return d.Dir, nil
}

// classify scans the licence files at the root of dir.
func classify(dir string) (Module, error) {
	var m Module
	entries, err := os.ReadDir(dir)
	if err != nil {
		return m, err
	}
	all := map[string]bool{}
	for _, e := range entries {
		if !e.Type().IsRegular() || !licenceFile.MatchString(e.Name()) {
			continue
		}
		text, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return m, err
		}
		cov := licensecheck.Scan(text)
		f := File{Name: e.Name(), Percent: cov.Percent}
		seen := map[string]bool{}
		for _, match := range cov.Match {
			if !seen[match.ID] {
				seen[match.ID] = true
				f.Licences = append(f.Licences, match.ID)
			}
			all[match.ID] = true
		}
		sort.Strings(f.Licences)
		m.Files = append(m.Files, f)
	}
	for id := range all {
		m.Licences = append(m.Licences, id)
	}
	sort.Strings(m.Licences)
	return m, nil
}
