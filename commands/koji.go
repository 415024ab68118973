package commands

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/redact"
)

// systemMessage maps a known failure of a system package to a short reply
// that names the failure, never an address (the database's host:port) or a
// path: the caller logs the whole error.
func systemMessage(err error) (string, bool) {
	var perm *kojidb.PermissionError
	switch {
	case errors.Is(err, kojidb.ErrUnavailable):
		return "the Koji database is unavailable right now; nothing was changed, try again later", true
	case errors.As(err, &perm):
		return perm.Reply(), true
	case errors.Is(err, kojidb.ErrBadCapacity):
		return "capacity must be a number greater than 1 (Koji's own limit)", true
	case errors.Is(err, kojidb.ErrNoHost):
		return redact.Text(err.Error()), true
	case isFleetError(err):
		return publicError(err), true
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out; nothing more was done", true
	case errors.Is(err, context.Canceled):
		return "cancelled", true
	}
	return "", false
}

// kojiHost resolves a caller's host name against the Koji hosts.
func (d *Dispatcher) kojiHost(ctx context.Context, query string) (kojidb.Host, error) {
	// One query for the rows the name can mean, when the database can; the
	// whole list only for an unknown name, whose error names the closest.
	if db, ok := d.deps.DB.(hostsNamed); ok {
		hosts, err := db.HostsNamed(ctx, query)
		if err != nil {
			return kojidb.Host{}, err
		}
		if len(hosts) > 0 {
			return pickHost(query, hosts)
		}
	}
	hosts, err := d.deps.DB.Hosts(ctx)
	if err != nil {
		return kojidb.Host{}, err
	}
	return pickHost(query, hosts)
}

// hostsNamed is a KojiDB that can read only the hosts a name can mean.
type hostsNamed interface {
	HostsNamed(ctx context.Context, query string) ([]kojidb.Host, error)
}

// pickHost resolves query among hosts (ResolveName) and returns that host.
func pickHost(query string, hosts []kojidb.Host) (kojidb.Host, error) {
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	name, err := ResolveName("host", query, names)
	if err != nil {
		return kojidb.Host{}, err
	}
	for _, h := range hosts {
		if h.Name == name {
			return h, nil
		}
	}
	return kojidb.Host{}, fmt.Errorf("%w: %s", kojidb.ErrNoHost, name)
}

// formatNumber prints a capacity or load without useless decimals.
func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// ago renders a duration for humans: 45s, 3m, 2h5m, 3d4h.
func ago(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// shortDuration renders a configured age: 7d, 36h, 40m.
func shortDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

func flagWord(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// hostColumns are the columns of the hosts table.
var hostColumns = []reply.Column{{Name: "host"}, {Name: "enabled"}, {Name: "ready"},
	{Name: "load", Right: true}, {Name: "capacity", Right: true}, {Name: "checked in"}}

// hostRow is a host's row in the hosts table.
func hostRow(h kojidb.Host) []string {
	checkin := "never"
	if !h.LastCheckin.IsZero() {
		checkin = ago(h.CheckinAge) + " ago"
	}
	return []string{h.Name, flagWord(h.Enabled, "yes", "no"), flagWord(h.Ready, "yes", "no"),
		formatNumber(h.TaskLoad), formatNumber(h.Capacity), checkin}
}

func (d *Dispatcher) runHosts(ctx context.Context, c *Call) error {
	hosts, err := d.deps.DB.Hosts(ctx)
	if err != nil {
		return err
	}
	pattern := c.Arg("glob")
	var names []string
	for _, h := range hosts {
		names = append(names, h.Name)
	}
	if pattern != "" {
		names = MatchGlob(pattern, names)
		if len(names) == 0 {
			return Userf("no host matches %s", quoteShort(pattern))
		}
	}
	keep := map[string]bool{}
	for _, n := range names {
		keep[n] = true
	}
	table := &reply.Table{Columns: hostColumns}
	enabled, ready := 0, 0
	for _, h := range hosts {
		if !keep[h.Name] {
			continue
		}
		if h.Enabled {
			enabled++
		}
		if h.Ready {
			ready++
		}
		table.Rows = append(table.Rows, hostRow(h))
	}
	c.Say(reply.Message{Table: table,
		Lines: []string{fmt.Sprintf("%s, %d enabled, %d ready", Count(len(table.Rows), "host", "hosts"), enabled, ready)}})
	return nil
}

func (d *Dispatcher) runHost(ctx context.Context, c *Call) error {
	h, err := d.kojiHost(ctx, c.Arg("host"))
	if err != nil {
		return err
	}
	last := "never"
	if !h.LastCheckin.IsZero() {
		last = h.LastCheckin.UTC().Format("2006-01-02 15:04:05 UTC") + " (" + ago(h.CheckinAge) + " ago)"
	}
	msg := fmt.Sprintf("%s: %s, %s, load %s of capacity %s, arches %s, last check-in %s",
		h.Name, flagWord(h.Enabled, "enabled", "DISABLED"), flagWord(h.Ready, "ready", "not ready"),
		formatNumber(h.TaskLoad), formatNumber(h.Capacity), orNone(h.Arches), last)
	if h.Comment != "" {
		msg += "; comment: " + h.Comment
	}
	c.Reply("%s", msg)
	return nil
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "none"
	}
	return s
}

func (d *Dispatcher) runCapacity(ctx context.Context, c *Call) error {
	value := c.Number("value")
	if !(value > 1) {
		return Userf("capacity must be a number greater than 1, got %s (Koji refuses 1 or less); usage: %s", c.Arg("value"), c.Spec.Usage())
	}
	h, err := d.kojiHost(ctx, c.Arg("host"))
	if err != nil {
		return err
	}
	before, after, err := d.deps.DB.SetCapacity(ctx, h.Name, value)
	if err != nil {
		return err
	}
	if before.Capacity == after.Capacity {
		c.Reply("%s capacity is already %s; nothing changed (load %s)", after.Name, formatNumber(after.Capacity), formatNumber(after.TaskLoad))
		return nil
	}
	c.Reply("%s capacity %s → %s (load %s)", after.Name, formatNumber(before.Capacity), formatNumber(after.Capacity), formatNumber(after.TaskLoad))
	return nil
}

func (d *Dispatcher) runEnable(ctx context.Context, c *Call) error {
	return d.setEnabled(ctx, c, true, "")
}

func (d *Dispatcher) runDisable(ctx context.Context, c *Call) error {
	return d.setEnabled(ctx, c, false, c.Arg("reason"))
}

func (d *Dispatcher) setEnabled(ctx context.Context, c *Call, enabled bool, reason string) error {
	h, err := d.kojiHost(ctx, c.Arg("host"))
	if err != nil {
		return err
	}
	// disable with a reason does what `koji disable-host --comment` does:
	// disableHost, then editHost(comment=...). Without a reason the comment
	// says who disabled it, unless the host is already disabled (its
	// comment then stays).
	var comment string
	switch {
	case enabled:
	case reason != "":
		comment = reason + " (" + c.FASUser + " via kojibot)"
	case h.Enabled:
		comment = "disabled by " + c.FASUser + " via kojibot"
	}
	before, after, err := d.deps.DB.SetEnabled(ctx, h.Name, enabled, comment)
	if err != nil {
		return err
	}
	word := flagWord(enabled, "enabled", "disabled")
	if before.Enabled == after.Enabled {
		if before.Comment != after.Comment {
			c.Reply("%s is already %s; comment: %s", after.Name, word, after.Comment)
			return nil
		}
		c.Reply("%s is already %s; nothing changed", after.Name, word)
		return nil
	}
	msg := fmt.Sprintf("%s %s (load %s/%s)", after.Name, word, formatNumber(after.TaskLoad), formatNumber(after.Capacity))
	if !enabled {
		msg += "; comment: " + comment
	}
	c.Reply("%s", msg)
	return nil
}
