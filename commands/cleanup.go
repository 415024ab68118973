package commands

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/commands/state"
)

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

// key is the plan's stable form, what a confirmation compares when the
// plan is made again in another process: the builder, the services
// stopped, the age limit, the Koji check, and the path and kind of every
// entry deleted. The entries' ages and sizes, which move by themselves,
// are left out: the same entries are the same plan.
func (p *cleanupPlan) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cleanup\x00%s\x00%s\x00%d\x00%q\x00%t\n", p.Builder, strings.Join(p.Services, ","), p.Older, p.KojiProblem, p.NoKojiCheck)
	var del []string
	for _, e := range p.Delete {
		del = append(del, fmt.Sprintf("%q %s", e.Path, e.Kind))
	}
	sort.Strings(del)
	b.WriteString(strings.Join(del, "\n"))
	return b.String()
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
	dr, err := d.newDraft(outage.ForFullMount(u.Path, u.Percent, host, d.deps.Now(), cfg.Disk.Escalate, cfg.Outage.To))
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
	f := d.deps.Fleet // the dispatcher checked it is there (NeedsFleet)
	cfg := d.deps.Config
	builder, err := d.builder(c.Arg("builder"))
	if err != nil {
		return err
	}
	older, err := c.Duration("older", cfg.Cleanup.MinAge)
	if err != nil {
		return err
	}
	if older < time.Hour {
		return Userf("--older must be at least 1h, got %s: younger buildroots may be in use", c.Flags["older"])
	}
	dryRun := c.Bool("dry-run")
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
	plan.NoKojiCheck = c.Bool("no-koji-check")
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
	return c.ConfirmPlanKeyed(plan.message(false), plan.key(), func(ctx context.Context, c *Call) error {
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
	hosts, err := d.koji().Hosts(ctx)
	if err != nil {
		return nil, err
	}
	switch names := kojiMatches(builder, hosts); len(names) {
	case 1:
		plan.KojiName = names[0]
		ids, err := d.koji().ActiveBuildroots(ctx, names[0])
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
		err := serviceStep(ctx, f, host, "stop", s)
		stopped = append(stopped, s) // even a failed stop may have stopped it
		if err != nil {
			return stopped, err
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
		err := serviceStep(ctx, f, host, "start", s)
		if err != nil {
			errs = append(errs, err)
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
