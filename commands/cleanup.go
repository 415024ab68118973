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

	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/outage"
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
func listEntries(ctx context.Context, f Fleet, host, dir string) ([]*entry, error) {
	res, err := f.Run(ctx, host, []string{"find", dir, "-mindepth", "1", "-maxdepth", "1", "-printf", `%T@\t%y\t%f\0`}, fleet.RunOptions{})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("listing %s: %s", dir, lastLine(res.Stderr))
	}
	var entries []*entry
	byPath := map[string]*entry{}
	for _, rec := range strings.Split(res.Stdout, "\x00") {
		if rec == "" {
			continue
		}
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
	res, err = f.Run(ctx, host, []string{"du", "-axB1", "--max-depth=1", "--null", "--", dir}, fleet.RunOptions{})
	if err != nil {
		return nil, err
	}
	for _, rec := range strings.Split(res.Stdout, "\x00") {
		size, p, ok := strings.Cut(rec, "\t")
		if !ok {
			continue
		}
		if e := byPath[p]; e != nil {
			e.Bytes, _ = strconv.ParseUint(size, 10, 64)
		}
	}
	return entries, nil
}

// mountPoints reads /proc/mounts on host: the mount points, unescaped.
func mountPoints(ctx context.Context, f Fleet, host string) ([]string, error) {
	res, err := f.Run(ctx, host, []string{"cat", "/proc/mounts"}, fleet.RunOptions{})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("reading /proc/mounts: %s", lastLine(res.Stderr))
	}
	var out []string
	for _, line := range strings.Split(res.Stdout, "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 {
			out = append(out, unescapeMount(fields[1]))
		}
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

// mountsUnder returns the mount points at or below p, deepest first.
func mountsUnder(p string, mounts []string) []string {
	var out []string
	for _, m := range mounts {
		if m == p || strings.HasPrefix(m, p+"/") {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		di, dj := strings.Count(out[i], "/"), strings.Count(out[j], "/")
		if di != dj {
			return di > dj
		}
		return out[i] > out[j]
	})
	return out
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
}

func (p *cleanupPlan) bytes() uint64 {
	var n uint64
	for _, e := range p.Delete {
		n += e.Bytes
	}
	return n
}

// text is the plan as the caller sees it.
func (p *cleanupPlan) text(dryRun bool) string {
	var b strings.Builder
	verb := "clean-up plan"
	if dryRun {
		verb = "dry run, nothing will change"
	}
	fmt.Fprintf(&b, "%s for %s: ", verb, p.Builder)
	if len(p.Services) > 0 {
		fmt.Fprintf(&b, "stop %s; ", strings.Join(p.Services, ", "))
	}
	fmt.Fprintf(&b, "delete %d entries older than %s (%s)", len(p.Delete), shortDuration(p.Older), humanBytes(p.bytes()))
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
	for _, e := range p.Delete {
		fmt.Fprintf(&b, "\n  delete %s (%s, %s, %s old)", e.Path, e.Kind, humanBytes(e.Bytes), ago(time.Since(e.Mtime)))
	}
	return b.String()
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
		link = strings.TrimRight(cfg.HTTP.PublicURL, "/") + "/drafts/" + dr.ID
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
	if err := d.jobs.refuseBusy(builder); err != nil {
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
	if len(plan.Delete) == 0 {
		c.Reply("%s: nothing older than %s to delete (%d entries kept); nothing was done", builder, shortDuration(older), len(plan.Keep))
		return nil
	}
	if dryRun {
		c.Reply("%s", plan.text(true))
		return nil
	}
	return c.Confirm(plan.text(false), func(ctx context.Context, c *Call) error {
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

	active := map[int64]bool{}
	if hosts, err := d.deps.DB.Hosts(ctx); err != nil {
		return nil, err
	} else if name, ok := kojiNameFor(builder, hosts); ok {
		plan.KojiName = name
		ids, err := d.deps.DB.ActiveBuildroots(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			active[id] = true
		}
	}
	cutoff := d.deps.Now().Add(-older)
	for _, dir := range cfg.Cleanup.Dirs {
		entries, err := listEntries(ctx, f, builder, dir)
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

// doCleanup carries out a confirmed plan (SPEC.md §5 step 5 and 6).
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
		// holds a mount is skipped, never deleted through.
		mounts, err := mountPoints(ctx, f, host)
		if err != nil {
			return err
		}
		for _, m := range mountsUnder(e.Path, mounts) {
			res, err := f.Run(ctx, host, []string{"umount", "--", m}, fleet.RunOptions{})
			if err != nil {
				return err
			}
			if res.ExitCode != 0 {
				c.Log.Warn("umount failed", "mount", m, "stderr", res.Stderr)
			}
		}
		mounts, err = mountPoints(ctx, f, host)
		if err != nil {
			return err
		}
		if left := mountsUnder(e.Path, mounts); len(left) > 0 {
			skipped = append(skipped, fmt.Sprintf("%s (still holds mount %s)", e.Path, left[0]))
			continue
		}
		res, err := f.Run(ctx, host, []string{"rm", "-rf", "--one-file-system", "--", e.Path}, fleet.RunOptions{})
		if err != nil {
			return fmt.Errorf("deleting %s: %w (removed %d before it)", e.Path, err, len(removed))
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("deleting %s failed: %s (removed %d before it)", e.Path, lastLine(res.Stderr), len(removed))
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
	msg := fmt.Sprintf("%s: removed %d entries, freed %s (%d bytes by df)", host, len(removed), humanBytes(uint64(freed)), freed)
	if len(skipped) > 0 {
		msg += fmt.Sprintf("; skipped %d: %s", len(skipped), strings.Join(skipped, ", "))
	}
	if derr == nil {
		msg += "; now " + strings.Join(parts, ", ")
	}
	c.Reply("%s", msg)
	return nil
}
