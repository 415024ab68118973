package commands

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
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/commands/state"
)

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
	for _, rec := range recs {
		size, p, ok := strings.Cut(rec, "\t")
		if !ok {
			return nil, fmt.Errorf("sizing %s: unexpected du output %q", dir, rec)
		}
		n, err := strconv.ParseUint(size, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("sizing %s: bad size in du output %q", dir, rec)
		}
		if e := byPath[p]; e != nil {
			e.Bytes = n
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
		return nil, fmt.Errorf("%w: last record %q is not NUL-terminated", fleet.ErrOutputTruncated, cutText(last, 80))
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
		return nil, fmt.Errorf("reading /proc/mounts: %w: last line %q has no newline", fleet.ErrOutputTruncated, cutText(last, 80))
	}
	var out []mount
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 6 {
			return nil, fmt.Errorf("reading /proc/mounts: unexpected line %q", cutText(line, 120))
		}
		raw := fields[1]
		m := mount{Literal: unescapeMount(raw)}
		m.Path = m.Literal
		if stripped, ok := strings.CutSuffix(raw, deletedSuffix); ok && stripped != "" {
			m.Path, m.Deleted = unescapeMount(stripped), true
		}
		out = append(out, m)
	}
	return out, nil
}

// unescapeMount decodes /proc/mounts' octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
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

// cleanupPlan is what a clean-up will do, shown before it is confirmed.
type cleanupPlan struct {
	Builder  string
	KojiName string
	Services []string
	Delete   []*entry
	Keep     []*entry
	Older    time.Duration
	Before   []fleet.Usage
	// KojiProblem, when set, says why the builder has no one Koji host
	// (none, or several): active buildroots are then not protected.
	KojiProblem string
	// NoKojiCheck is set when the caller gave --no-koji-check.
	NoKojiCheck bool
}

func (p *cleanupPlan) bytes() uint64 {
	var n uint64
	for _, e := range p.Delete {
		n += e.Bytes
	}
	return n
}

// message is the plan as the caller sees it: what it does in one line,
// then a table of what goes.
func (p *cleanupPlan) message(dryRun bool) reply.Message {
	var b strings.Builder
	verb := "clean-up plan"
	if dryRun {
		verb = "dry run, nothing will change"
	}
	fmt.Fprintf(&b, "%s for %s: ", verb, p.Builder)
	if len(p.Services) > 0 {
		fmt.Fprintf(&b, "stop %s; ", strings.Join(p.Services, ", "))
	}
	fmt.Fprintf(&b, "delete %s older than %s (%s)", Count(len(p.Delete), "entry", "entries"), shortDuration(p.Older), humanBytes(p.bytes()))
	if len(p.Services) > 0 {
		fmt.Fprintf(&b, "; start %s again", strings.Join(p.Services, ", "))
	}
	kept := map[string]int{}
	for _, e := range p.Keep {
		kept[e.Skip]++
	}
	if len(kept) > 0 {
		var parts []string
		for reason, n := range kept {
			parts = append(parts, fmt.Sprintf("%d %s", n, reason))
		}
		sort.Strings(parts)
		fmt.Fprintf(&b, "; keeping %s", strings.Join(parts, ", "))
	}
	if p.KojiProblem != "" {
		fmt.Fprintf(&b, "; WARNING: %s: active buildroots are NOT protected", p.KojiProblem)
		if !p.NoKojiCheck {
			b.WriteString(" (a real run is refused without --no-koji-check)")
		}
	}
	table := &reply.Table{Columns: []reply.Column{{Name: "delete"}, {Name: "kind"}, {Name: "size", Right: true}, {Name: "age", Right: true}}}
	for _, e := range p.Delete {
		table.Rows = append(table.Rows, []string{e.Path, e.Kind, humanBytes(e.Bytes), ago(time.Since(e.Mtime))})
	}
	return reply.Message{Lines: []string{b.String()}, Table: table}
}

// sharedFull reads the shared mounts and returns those at or over the
// threshold. An unreadable shared mount is an error: the clean-up does not
// go ahead blind.
func (d *Dispatcher) sharedFull(ctx context.Context, f Fleet) ([]fleet.Usage, error) {
	cfg := d.deps.Config
	if cfg.Disk.SharedFrom == "" || len(cfg.Disk.SharedMounts) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.perHostTimeout())
	defer cancel()
	usages, err := f.DiskUsage(ctx, cfg.Disk.SharedFrom, cfg.Disk.SharedMounts)
	if err != nil {
		return nil, fmt.Errorf("reading the shared mounts on %s: %w", cfg.Disk.SharedFrom, err)
	}
	var full []fleet.Usage
	for _, u := range usages {
		if u.Percent >= cfg.Disk.FullPercent {
			full = append(full, u)
		}
	}
	return full, nil
}

// DraftForFullMount records an outage draft for a full shared mount and
// returns it with the text that points to it.
func (d *Dispatcher) DraftForFullMount(u fleet.Usage, host string) (outage.Draft, string, error) {
	cfg := d.deps.Config
	dr, err := d.deps.Drafts.New(outage.ForFullMount(u.Path, u.Percent, host, d.deps.Now(), cfg.Disk.Escalate, cfg.Outage.To))
	if err != nil {
		return dr, "", err
	}
	link := "outage show " + dr.ID
	if cfg.HTTP.PublicURL != "" {
		link = strings.TrimRight(cfg.HTTP.PublicURL, "/") + dr.Path()
	}
	return dr, link, nil
}

func (d *Dispatcher) runCleanup(ctx context.Context, c *Call) error {
	f, err := d.fleetOrError()
	if err != nil {
		return err
	}
	cfg := d.deps.Config
	builder, err := d.builder(c.Arg("builder"))
	if err != nil {
		return err
	}
	older := cfg.Cleanup.MinAge
	if v, ok := c.Flags["older"]; ok {
		older, _ = ParseDuration(v)
	}
	if older < time.Hour {
		return Userf("--older must be at least 1h, got %s: younger buildroots may be in use", c.Flags["older"])
	}
	dryRun := c.Flags["dry-run"] != ""
	// A plan made while another job works on the builder would be stale
	// (or fail on entries vanishing under it): refuse now, not at confirm.
	if err := d.jobs.refuseBusy(c, builder); err != nil {
		return err
	}

	// 1. Shared mounts first: when they are full, cleaning a builder does not help.
	full, err := d.sharedFull(ctx, f)
	if err != nil {
		return Userf("%s; nothing was done", remoteMessage(err))
	}
	if len(full) > 0 {
		var lines []string
		for _, u := range full {
			dr, link, err := d.DraftForFullMount(u, cfg.Disk.SharedFrom)
			if err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("shared mount %s on %s is %.0f%% full: cleaning %s will not help; outage draft %s: %s",
				u.Path, cfg.Disk.SharedFrom, u.Percent, builder, dr.ID, link))
		}
		if len(cfg.Disk.Escalate) > 0 {
			lines = append(lines, "escalate to: "+strings.Join(cfg.Disk.Escalate, ", "))
		}
		lines = append(lines, builder+" was not touched")
		c.Send(Error, strings.Join(lines, "\n"))
		return nil
	}

	plan, err := d.planCleanup(ctx, f, c, builder, older)
	if err != nil {
		return err
	}
	plan.NoKojiCheck = c.Flags["no-koji-check"] != ""
	if plan.KojiProblem != "" && !plan.NoKojiCheck && !dryRun {
		return Userf("%s: the active-buildroot check needs exactly one Koji host, so active buildroots cannot be protected; "+
			"nothing was done (give --no-koji-check to clean up anyway)", plan.KojiProblem)
	}
	if len(plan.Delete) == 0 {
		c.Reply("%s: nothing older than %s to delete (%s kept); nothing was done", builder, shortDuration(older), Count(len(plan.Keep), "entry", "entries"))
		return nil
	}
	if dryRun {
		c.Say(plan.message(true))
		return nil
	}
	return c.ConfirmPlan(plan.message(false), func(ctx context.Context, c *Call) error {
		return c.StartJob([]string{builder}, func(ctx context.Context, c *Call) error {
			return d.doCleanup(ctx, f, c, plan)
		})
	})
}

// planCleanup lists the builder's clean-up directories and selects what goes.
func (d *Dispatcher) planCleanup(ctx context.Context, f Fleet, c *Call, builder string, older time.Duration) (*cleanupPlan, error) {
	cfg := d.deps.Config
	plan := &cleanupPlan{Builder: builder, Services: d.servicesOf(builder), Older: older}
	before, err := d.quickDF(ctx, f, builder, cfg.Cleanup.Dirs)
	if err != nil {
		return nil, Userf("%s: %s; nothing was done", builder, remoteMessage(err))
	}
	plan.Before = before
	var parts []string
	for _, u := range before {
		parts = append(parts, d.usageText(u))
	}
	c.Reply("%s before: %s", builder, strings.Join(parts, ", "))

	// The active-buildroot guard needs the builder's one Koji host; without
	// it the plan says so, and runCleanup refuses unless --no-koji-check.
	active := map[int64]bool{}
	hosts, err := d.deps.DB.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	switch names := kojiMatches(builder, hosts); len(names) {
	case 1:
		plan.KojiName = names[0]
		ids, err := d.deps.DB.ActiveBuildroots(ctx, names[0])
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			active[id] = true
		}
	case 0:
		plan.KojiProblem = builder + " maps to no Koji host"
	default:
		plan.KojiProblem = fmt.Sprintf("%s maps to %d Koji hosts (%s)", builder, len(names), strings.Join(names, ", "))
	}
	cutoff := d.deps.Now().Add(-older)
	for _, dir := range cfg.Cleanup.Dirs {
		entries, err := d.listEntries(ctx, f, builder, dir)
		if errors.Is(err, fleet.ErrOutputTruncated) {
			return nil, Userf("%s: the listing of %s was cut at the output cap (ssh.max_output): nothing is planned from a cut listing; nothing was done", builder, dir)
		}
		if err != nil {
			return nil, Userf("%s: %s; nothing was done", builder, remoteMessage(err))
		}
		for _, e := range entries {
			switch {
			case !e.Mtime.Before(cutoff):
				e.Skip = "newer than " + shortDuration(older)
			case e.Kind == kindKoji && active[e.Buildroot]:
				e.Skip = "active in Koji"
			}
			if e.Skip != "" {
				plan.Keep = append(plan.Keep, e)
			} else {
				plan.Delete = append(plan.Delete, e)
			}
		}
	}
	return plan, nil
}

// kojiMatches returns the Koji hosts a configured builder may stand for:
// the host of the same name when there is one, else every host whose first
// label is the builder's first label. The active-buildroot guard holds only
// when there is exactly one.
func kojiMatches(builder string, hosts []kojidb.Host) []string {
	short, _, _ := strings.Cut(builder, ".")
	var byLabel []string
	for _, h := range hosts {
		if h.Name == builder {
			return []string{h.Name}
		}
		if label, _, _ := strings.Cut(h.Name, "."); label == short {
			byLabel = append(byLabel, h.Name)
		}
	}
	sort.Strings(byLabel)
	return byLabel
}

// quickDF is DiskUsage under the per-host deadline.
func (d *Dispatcher) quickDF(ctx context.Context, f Fleet, host string, paths []string) ([]fleet.Usage, error) {
	ctx, cancel := context.WithTimeout(ctx, d.perHostTimeout())
	defer cancel()
	return f.DiskUsage(ctx, host, paths)
}

// stopServices stops each service and checks it stopped; it returns the
// ones it stopped, so that they can be started again whatever happens.
func (d *Dispatcher) stopServices(ctx context.Context, f Fleet, c *Call, host string, services []string) ([]string, error) {
	var stopped []string
	for _, s := range services {
		// The journal first: a crash after the stop must find it there.
		if err := d.journalOpen(c, host, state.KindService, s); err != nil {
			return stopped, err
		}
		res, err := f.Service(ctx, host, "stop", s)
		stopped = append(stopped, s) // even a failed stop may have stopped it
		if err != nil {
			return stopped, fmt.Errorf("stopping %s: %w", s, err)
		}
		if res.ExitCode != 0 {
			return stopped, fmt.Errorf("stopping %s: exit %d: %s", s, res.ExitCode, lastLine(res.Stderr+res.Stdout))
		}
		res, err = f.Service(ctx, host, "is-active", s)
		if err != nil {
			return stopped, fmt.Errorf("checking %s: %w", s, err)
		}
		if res.ExitCode == 0 {
			return stopped, fmt.Errorf("%s is still active after stop", s)
		}
	}
	if len(services) > 0 {
		c.Reply("%s: stopped %s", host, strings.Join(services, ", "))
	}
	return stopped, nil
}

// startServices starts each service and checks it runs. It uses its own
// context: a cancelled job must still restore what it stopped.
func (d *Dispatcher) startServices(f Fleet, c *Call, host string, services []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), d.deps.Config.SSH.CommandTimeout+d.deps.Config.SSH.ConnectTimeout)
	defer cancel()
	var errs []error
	var started []string
	for _, s := range services {
		res, err := f.Service(ctx, host, "start", s)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("exit %d: %s", res.ExitCode, lastLine(res.Stderr+res.Stdout))
		}
		if err == nil {
			res, err = f.Service(ctx, host, "is-active", s)
			if err == nil && res.ExitCode != 0 {
				err = errors.New("not active after start")
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("starting %s: %w", s, err))
			continue
		}
		d.journalDone(c, host, state.KindService, s)
		started = append(started, s)
	}
	if len(started) > 0 {
		c.Reply("%s: started %s again", host, strings.Join(started, ", "))
	}
	if err := errors.Join(errs...); err != nil {
		c.Send(Error, fmt.Sprintf("%s: %v — start them by hand", host, err))
		return err
	}
	return nil
}

// doCleanup carries out a confirmed plan (steps 5 and 6 of the clean-up, docs/commands.md).
func (d *Dispatcher) doCleanup(ctx context.Context, f Fleet, c *Call, plan *cleanupPlan) (err error) {
	host := plan.Builder
	stopped, err := d.stopServices(ctx, f, c, host, plan.Services)
	defer func() {
		if len(stopped) > 0 {
			if serr := d.startServices(f, c, host, stopped); serr != nil && err == nil {
				err = serr
			}
		}
	}()
	if err != nil {
		return err
	}
	var removed, skipped []string
	for _, e := range plan.Delete {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Unmount what is mounted inside, deepest first; an entry that still
		// holds a mount (an unmount failed) is skipped and reported, never
		// deleted through.
		mounts, err := mountPoints(ctx, f, host)
		if err != nil {
			return err
		}
		var failures []string
		for _, m := range mountsUnder(e.Path, mounts) {
			if m.Deleted {
				c.Log.Warn("deleted mount point", "host", host, "mount", m.Literal, "path", m.Path)
			}
			if err := d.journalOpen(c, host, state.KindMount, m.Path); err != nil {
				return err
			}
			failure, err := d.unmount(ctx, f, host, e.Path, m)
			if err != nil {
				return err
			}
			if failure != "" {
				c.Log.Warn("umount failed", "host", host, "mount", m.Literal, "detail", failure)
				failures = append(failures, failure)
			}
		}
		mounts, err = mountPoints(ctx, f, host)
		if err != nil {
			return err
		}
		if left := mountsUnder(e.Path, mounts); len(left) > 0 {
			reason := fmt.Sprintf("%s (still holds mount %s", e.Path, left[0].Literal)
			if len(failures) > 0 {
				reason += ": " + strings.Join(failures, "; ")
			}
			skipped = append(skipped, reason+")")
			continue
		}
		res, err := f.Run(ctx, host, d.privileged([]string{"rm", "-rf", "--one-file-system", "--", e.Path}, "rm", e.Path), fleet.RunOptions{})
		if err != nil {
			return fmt.Errorf("deleting %s: %w (removed %d before it)", path.Base(e.Path), err, len(removed))
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("deleting %s failed: %s (removed %d before it)", path.Base(e.Path), lastLine(res.Stderr), len(removed))
		}
		removed = append(removed, e.Path)
		c.Log.Info("removed", "host", host, "path", e.Path, "bytes", e.Bytes)
	}
	after, derr := d.quickDF(context.Background(), f, host, d.deps.Config.Cleanup.Dirs)
	var freed int64
	var parts []string
	for i, u := range after {
		if i < len(plan.Before) {
			freed += int64(plan.Before[i].Used) - int64(u.Used)
		}
		parts = append(parts, d.usageText(u))
	}
	if freed < 0 {
		freed = 0
	}
	msg := fmt.Sprintf("%s: removed %s, freed %s (%d bytes by df)", host, Count(len(removed), "entry", "entries"), humanBytes(uint64(freed)), freed)
	if len(skipped) > 0 {
		msg += fmt.Sprintf("; skipped %d: %s", len(skipped), strings.Join(skipped, ", "))
	}
	if derr == nil {
		msg += "; now " + strings.Join(parts, ", ")
	}
	c.Reply("%s", msg)
	return nil
}
