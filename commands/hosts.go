package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/kojiapi"
	"github.com/fedora-infra/kojibot/commands/kojidb"
)

// kojiHost resolves a caller's host name against the Koji hosts.
func (d *Dispatcher) kojiHost(ctx context.Context, query string) (kojidb.Host, error) {
	// One query for the rows the name can mean, when the database can; the
	// whole list only for an unknown name, whose error names the closest.
	if db, ok := d.koji().(hostsNamed); ok {
		hosts, err := db.HostsNamed(ctx, query)
		if err != nil {
			return kojidb.Host{}, err
		}
		if len(hosts) > 0 {
			return pickHost(query, hosts)
		}
	}
	hosts, err := d.koji().Hosts(ctx)
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
	hosts, err := d.koji().Hosts(ctx)
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
	m := reply.Text(Info, msg)
	if web := strings.TrimRight(d.deps.Config.Koji.WebURL, "/"); web != "" && h.ID > 0 {
		// The host's page on the hub's web UI (koji.weburl).
		m.Links = []reply.Link{{Label: "Koji", URL: fmt.Sprintf("%s/hostinfo?hostID=%d", web, h.ID)}}
	}
	c.Say(m)
	return nil
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
	// Through the hub with act_as_caller, the write is the caller's.
	before, after, err := d.koji().SetCapacity(kojiapi.ForCaller(ctx, c.FASUser), h.Name, value)
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
	before, after, err := d.koji().SetEnabled(kojiapi.ForCaller(ctx, c.FASUser), h.Name, enabled, comment)
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

// koji is the way to Koji's hosts: the hub when koji.hub.url is set, else
// the database.
func (d *Dispatcher) koji() KojiHosts {
	switch {
	case d.deps.Hub != nil:
		return d.deps.Hub
	case d.deps.DB != nil:
		return d.deps.DB
	}
	return noKoji{}
}

// errNoKoji: neither the hub nor the database is configured.
var errNoKoji = &UserError{Msg: "Koji is not configured (koji.hub.url or koji.db.dsn); nothing was done"}

// noKoji is the KojiHosts of a bot configured with neither the hub nor the
// database: every call fails with errNoKoji.
type noKoji struct{}

func (noKoji) Hosts(context.Context) ([]kojidb.Host, error) { return nil, errNoKoji }
func (noKoji) SetCapacity(context.Context, string, float64) (kojidb.Host, kojidb.Host, error) {
	return kojidb.Host{}, kojidb.Host{}, errNoKoji
}
func (noKoji) SetEnabled(context.Context, string, bool, string) (kojidb.Host, kojidb.Host, error) {
	return kojidb.Host{}, kojidb.Host{}, errNoKoji
}
func (noKoji) ActiveBuildroots(context.Context, string) ([]int64, error) { return nil, errNoKoji }
