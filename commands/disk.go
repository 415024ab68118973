package commands

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/alerting"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/watch"
	"github.com/fedora-infra/kojibot/commands/watch/trend"
)

// builderMounts are the mounts df reads on a builder.
func (d *Dispatcher) builderMounts() []string {
	if m := d.deps.Config.Disk.Mounts; len(m) > 0 {
		return m
	}
	return d.deps.Config.Cleanup.Dirs
}

// dfLine reads host's mounts and renders one line, flagging full ones;
// kind ("disk" or "shared") names the watcher's check of those mounts,
// whose readings give each mount's rate when there are enough of them.
func (d *Dispatcher) dfLine(ctx context.Context, f Fleet, kind, host string, mounts []string) (string, []fleet.Usage, error) {
	ctx, cancel := context.WithTimeout(ctx, d.perHostTimeout())
	defer cancel()
	usages, err := f.DiskUsage(ctx, host, mounts)
	parts := make([]string, 0, len(usages))
	for _, u := range usages {
		s := d.usageText(u)
		if p := d.fillTrend(kind, host, u.Path); p.OK {
			s += ", " + p.String()
		}
		parts = append(parts, s)
	}
	line := host + ": " + strings.Join(parts, ", ")
	if err != nil {
		if len(parts) == 0 {
			return host + ": " + remoteMessage(err), nil, err
		}
		line += "; " + remoteMessage(err)
	}
	return line, usages, err
}

// fillTrend is the watcher's prediction for host's mount, from its readings
// of the last watch.PredictWindow; not OK without them.
func (d *Dispatcher) fillTrend(kind, host, mount string) trend.Prediction {
	if d.deps.Samples == nil {
		return trend.Prediction{}
	}
	check := alerting.CheckName(kind, host, mount)
	return trend.Estimate(d.deps.Samples.Recent(check, d.deps.Now().Add(-watch.PredictWindow)))
}

// dfColumns are the columns of disk all's table: one row per mount of
// each builder, and one for a builder (or the rest of it) that could not
// be read.
var dfColumns = []reply.Column{{Name: "builder"}, {Name: "mount"}, {Name: "used", Right: true},
	{Name: "free", Right: true}, {Name: "note"}}

// dfRows reads host's mounts into rows of the disk all table, and says
// whether one of them is full.
func (d *Dispatcher) dfRows(ctx context.Context, f Fleet, host string, mounts []string) ([][]string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d.perHostTimeout())
	defer cancel()
	usages, err := f.DiskUsage(ctx, host, mounts)
	rows := make([][]string, 0, len(usages)+1)
	full := false
	for _, u := range usages {
		note := ""
		if u.Percent >= d.deps.Config.Disk.FullPercent {
			note, full = "FULL", true
		}
		rows = append(rows, []string{host, u.Path, fmt.Sprintf("%.0f%%", u.Percent), humanBytes(u.Avail), note})
	}
	if err != nil {
		rows = append(rows, []string{host, "", "", "", remoteMessage(err)})
	}
	return rows, full, err
}

func (d *Dispatcher) runDisk(ctx context.Context, c *Call) error {
	f := d.deps.Fleet // the dispatcher checked it is there (NeedsFleet)
	cfg := d.deps.Config
	switch target := strings.ToLower(c.Arg("target")); target {
	case "shared":
		if cfg.Disk.SharedFrom == "" || len(cfg.Disk.SharedMounts) == 0 {
			return Userf("no shared mounts configured (disk.shared_mounts, disk.shared_from)")
		}
		return d.replyDF(ctx, f, c, watch.KindShared, cfg.Disk.SharedFrom, cfg.Disk.SharedMounts)
	case "all":
		builders := d.Builders()
		if len(builders) == 0 {
			return Userf("no builders configured (hosts:)")
		}
		var mu sync.Mutex
		rows := map[string][][]string{}
		isFull := map[string]bool{}
		results := f.Each(ctx, builders, func(ctx context.Context, host string) error {
			hostRows, full, err := d.dfRows(ctx, f, host, d.builderMounts())
			mu.Lock()
			defer mu.Unlock()
			rows[host], isFull[host] = hostRows, full
			return err
		})
		var failed, full []string
		table := &reply.Table{Columns: dfColumns}
		for _, h := range builders {
			if results[h] != nil {
				failed = append(failed, h)
			}
			if isFull[h] {
				full = append(full, h)
			}
			table.Rows = append(table.Rows, rows[h]...)
		}
		head := fmt.Sprintf("%s: %d full, %d could not be read", Count(len(builders), "builder", "builders"), len(full), len(failed))
		if len(full) > 0 {
			head += "; full: " + strings.Join(full, ", ")
		}
		if len(failed) > 0 {
			head += "; failed: " + strings.Join(failed, ", ")
		}
		c.Say(reply.Message{Lines: []string{head}, Table: table})
		return nil
	default:
		host, err := d.machine(target)
		if err != nil {
			return err
		}
		mounts, kind := d.builderMounts(), watch.KindDisk
		if host == cfg.Disk.SharedFrom {
			mounts, kind = cfg.Disk.SharedMounts, watch.KindShared
		}
		return d.replyDF(ctx, f, c, kind, host, mounts)
	}
}

// replyDF answers with one host's df line; a host that could not be read
// at all is an error.
func (d *Dispatcher) replyDF(ctx context.Context, f Fleet, c *Call, kind, host string, mounts []string) error {
	line, usages, err := d.dfLine(ctx, f, kind, host, mounts)
	if err != nil && len(usages) == 0 {
		return Userf("%s", line)
	}
	c.Reply("%s", line)
	return nil
}
