package commands

// What the clean-up reads on a builder before it plans: the entries of
// the clean-up directories (find), and the mounts (/proc/mounts).

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/fleet"
)

// entry is one direct child of a clean-up directory.
type entry struct {
	Path      string
	Name      string
	Type      string // find's %y: d, f, l, ...
	Mtime     time.Time
	Bytes     uint64
	Kind      string
	Buildroot int64 // Koji buildroot id, 0 when not a Koji buildroot
	Skip      string
}

// classify sets the entry's kind and buildroot id from its name.
func (e *entry) classify() {
	switch m := reKojiRoot.FindStringSubmatch(e.Name); {
	case m != nil:
		e.Kind = kindKoji
		e.Buildroot, _ = strconv.ParseInt(m[2], 10, 64)
	case rePlague.MatchString(e.Name):
		e.Kind = kindPlague
	default:
		e.Kind = kindOther
	}
}

// listEntries lists the direct children of dir on host with their own
// mtime (symlinks not followed) and their size on this filesystem.
func (d *Dispatcher) listEntries(ctx context.Context, f Fleet, host, dir string) ([]*entry, error) {
	res, err := f.Run(ctx, host, []string{"find", dir, "-mindepth", "1", "-maxdepth", "1", "-printf", `%T@\t%y\t%f\0`}, fleet.RunOptions{})
	if err != nil {
		return nil, err
	}
	if err := res.Whole("listing " + dir); err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("listing %s: %s", dir, lastLine(res.Stderr))
	}
	recs, err := nulRecords(res.Stdout)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	var entries []*entry
	byPath := map[string]*entry{}
	for _, rec := range recs {
		parts := strings.SplitN(rec, "\t", 3)
		if len(parts) != 3 || parts[2] == "" || strings.Contains(parts[2], "/") {
			return nil, fmt.Errorf("listing %s: unexpected find output %q", dir, rec)
		}
		secs, err := strconv.ParseFloat(parts[0], 64)
		if err != nil {
			return nil, fmt.Errorf("listing %s: bad mtime %q", dir, parts[0])
		}
		e := &entry{Path: path.Join(dir, parts[2]), Name: parts[2], Type: parts[1],
			Mtime: time.Unix(int64(secs), int64((secs-float64(int64(secs)))*1e9))}
		e.classify()
		entries = append(entries, e)
		byPath[e.Path] = e
	}
	if len(entries) == 0 {
		return nil, nil
	}
	// Sizes: du on this filesystem only (-x), not following symlinks.
	res, err = f.Run(ctx, host, d.privileged([]string{"du", "-axB1", "--max-depth=1", "--null", "--", dir}, "du", dir), fleet.RunOptions{})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 && strings.TrimSpace(res.Stdout) == "" {
		// du prints at least DIR itself: nothing at all is a refusal
		// (the helper, sudo) or a du that could not start.
		return nil, fmt.Errorf("sizing %s failed (exit %d): %s", dir, res.ExitCode, lastLine(res.Stderr))
	}
	if err := res.Whole("sizing " + dir); err != nil {
		return nil, err
	}
	// du exits non-zero when it could not read part of the tree, yet
	// prints what it could: the sizes are then lower bounds, which only
	// makes the plan modest.
	recs, err = nulRecords(res.Stdout)
	if err != nil {
		return nil, fmt.Errorf("sizing %s: %w", dir, err)
	}
	// du names each child under the directory it was given, which the
	// helper resolves first: match the children by their name below the
	// directory's own record (the shortest path), not by dir's spelling.
	type sized struct {
		path  string
		bytes uint64
	}
	var all []sized
	root := ""
	for _, rec := range recs {
		size, p, ok := strings.Cut(rec, "\t")
		if !ok {
			return nil, fmt.Errorf("sizing %s: unexpected du output %q", dir, rec)
		}
		n, err := strconv.ParseUint(size, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("sizing %s: bad size in du output %q", dir, rec)
		}
		all = append(all, sized{p, n})
		if root == "" || len(p) < len(root) {
			root = p
		}
	}
	byName := make(map[string]*entry, len(byPath))
	for _, e := range byPath {
		byName[e.Name] = e
	}
	for _, r := range all {
		name, ok := strings.CutPrefix(r.path, strings.TrimSuffix(root, "/")+"/")
		if !ok || strings.Contains(name, "/") {
			continue
		}
		if e := byName[name]; e != nil {
			e.Bytes = r.bytes
		}
	}
	return entries, nil
}

// nulRecords splits output made of NUL-terminated records (find -printf
// '...\0', du --null). Every record must end with its NUL: output whose
// last record has none was cut, and is refused rather than read.
func nulRecords(out string) ([]string, error) {
	if out == "" {
		return nil, nil
	}
	if !strings.HasSuffix(out, "\x00") {
		last := out[strings.LastIndexByte(out, 0)+1:]
		return nil, fmt.Errorf("%w: last record %q is not NUL-terminated", fleet.ErrOutputTruncated, reply.Cut(last, 80))
	}
	var recs []string
	for _, rec := range strings.Split(strings.TrimSuffix(out, "\x00"), "\x00") {
		if rec == "" {
			return nil, errors.New("empty record in the output")
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// deletedSuffix is what the kernel appended, escaped, to a mount point
// whose directory was deleted under it (" (deleted)"); kojid strips it to
// find the real path.
const deletedSuffix = `\040(deleted)`

// mount is one mount point read from /proc/mounts.
type mount struct {
	// Literal is the mount point as /proc/mounts names it, unescaped.
	Literal string
	// Path is the mount point with the deleted suffix stripped: the path
	// kojid unmounts. It is Literal unless Deleted.
	Path string
	// Deleted is set when the mount point ended in `\040(deleted)`.
	Deleted bool
}

// under reports whether x is p or below it.
func under(x, p string) bool { return x == p || strings.HasPrefix(x, p+"/") }

// within reports whether the mount is at or below p by either of its
// names: a directory really called "x (deleted)" and a deleted directory x
// look the same in /proc/mounts, so both readings count.
func (m mount) within(p string) bool { return under(m.Path, p) || under(m.Literal, p) }

// targets are the paths to unmount m by, for an entry at p: the mount
// point as named first, then, for a deleted one, the stripped path; only
// those at or below p, so that nothing outside the entry is touched.
func (m mount) targets(p string) []string {
	var out []string
	if under(m.Literal, p) {
		out = append(out, m.Literal)
	}
	if m.Deleted && m.Path != m.Literal && under(m.Path, p) {
		out = append(out, m.Path)
	}
	return out
}

// mountPoints reads /proc/mounts on host. Output that was cut (over the
// output cap, or a last line without its newline) or a line that is not
// six fields is an error: a cut mount point could hide a real one.
func mountPoints(ctx context.Context, f Fleet, host string) ([]mount, error) {
	res, err := f.Run(ctx, host, []string{"cat", "/proc/mounts"}, fleet.RunOptions{})
	if err != nil {
		return nil, err
	}
	if err := res.Whole("reading /proc/mounts"); err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("reading /proc/mounts: %s", lastLine(res.Stderr))
	}
	return parseMounts(res.Stdout)
}

// parseMounts reads the text of /proc/mounts.
func parseMounts(text string) ([]mount, error) {
	if text == "" {
		return nil, errors.New("reading /proc/mounts: it is empty")
	}
	if !strings.HasSuffix(text, "\n") {
		last := text[strings.LastIndexByte(text, '\n')+1:]
		return nil, fmt.Errorf("reading /proc/mounts: %w: last line %q has no newline", fleet.ErrOutputTruncated, reply.Cut(last, 80))
	}
	var out []mount
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 6 {
			return nil, fmt.Errorf("reading /proc/mounts: unexpected line %q", reply.Cut(line, 120))
		}
		raw := fields[1]
		m := mount{Literal: fleet.UnescapeMountField(raw)}
		m.Path = m.Literal
		if stripped, ok := strings.CutSuffix(raw, deletedSuffix); ok && stripped != "" {
			m.Path, m.Deleted = fleet.UnescapeMountField(stripped), true
		}
		out = append(out, m)
	}
	return out, nil
}

// mountsUnder returns the mounts at or below p (by either name), deepest
// first.
func mountsUnder(p string, mounts []mount) []mount {
	var out []mount
	for _, m := range mounts {
		if m.within(p) {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		di, dj := strings.Count(out[i].Path, "/"), strings.Count(out[j].Path, "/")
		if di != dj {
			return di > dj
		}
		return out[i].Literal > out[j].Literal
	})
	return out
}

// unmount unmounts m, a mount found at or below the entry p: by the mount
// point as /proc/mounts names it and, when that fails for a deleted mount
// point, by its stripped path, as kojid does. It returns why it failed,
// or "" once one umount succeeded.
func (d *Dispatcher) unmount(ctx context.Context, f Fleet, host, p string, m mount) (string, error) {
	var failed []string
	for _, target := range m.targets(p) {
		res, err := f.Run(ctx, host, d.privileged([]string{"umount", "--", target}, "umount", target), fleet.RunOptions{})
		if err != nil {
			return "", fmt.Errorf("unmounting %s: %w", target, err)
		}
		if res.ExitCode == 0 {
			return "", nil
		}
		failed = append(failed, fmt.Sprintf("umount %s failed: %s", target, lastLine(res.Stderr+res.Stdout)))
	}
	return strings.Join(failed, "; "), nil
}

// Entry kinds found under a clean-up directory.
const (
	kindKoji   = "koji buildroot"
	kindPlague = "plague build"
	kindOther  = "other"
)

var (
	// <tag>-<buildroot_id>-<repo_id>, optionally -bootstrap (Koji's mock dirs).
	reKojiRoot = regexp.MustCompile(`^(.+)-([0-9]+)-([0-9]+)(-bootstrap)?$`)
	// …-<40 hex digits> (plague's build dirs).
	rePlague = regexp.MustCompile(`-[0-9a-f]{40}$`)
)
