package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/kojidb"
)

// errNeedsDB: `connections` reads pg_stat_activity, which only the Koji
// database shows; a bot configured with the hub alone cannot.
var errNeedsDB = &UserError{Msg: "connections needs koji.db (the Koji database's connections are not in the hub's API); koji.db.dsn is not set, nothing was done"}

// defaultOlder is the SOP's age for a stuck hub connection.
const defaultOlder = 40 * time.Minute

// olderFlag reads --older, defaulting to the SOP's 40 minutes.
func olderFlag(c *Call) (time.Duration, error) {
	return c.Duration("older", defaultOlder)
}

// oldBackends reads the Koji role's backends older than --older; when
// there are none it says so to the caller (with suffix) and returns nil.
func (d *Dispatcher) oldBackends(ctx context.Context, c *Call, suffix string) (string, time.Duration, []kojidb.Backend, error) {
	older, err := olderFlag(c)
	if err != nil {
		return "", 0, nil, err
	}
	if d.deps.DB == nil {
		return "", 0, nil, errNeedsDB
	}
	role := d.deps.Config.Koji.DBUser
	backends, err := d.deps.DB.Backends(ctx, role, older)
	if err == nil && len(backends) == 0 {
		c.Reply("no %s backends whose query started more than %s ago%s", role, shortDuration(older), suffix)
	}
	return role, older, backends, err
}

func (d *Dispatcher) runConnections(ctx context.Context, c *Call) error {
	role, older, backends, err := d.oldBackends(ctx, c, "")
	if err != nil || len(backends) == 0 {
		return err
	}
	table := &reply.Table{Columns: []reply.Column{{Name: "pid", Right: true}, {Name: "state"}, {Name: "from"},
		{Name: "started", Right: true}, {Name: "query"}}}
	now := d.deps.Now()
	for _, b := range backends {
		q := reply.Cut(strings.Join(strings.Fields(b.Query), " "), 80)
		table.Rows = append(table.Rows, []string{fmt.Sprint(b.PID), b.State, orNone(b.ClientAddr),
			ago(now.Sub(b.QueryStart)) + " ago", orNone(q)})
	}
	c.Say(reply.Message{Table: table,
		Lines: []string{fmt.Sprintf("%d %s backends whose query started more than %s ago:", len(backends), role, shortDuration(older))}})
	return nil
}

func (d *Dispatcher) runConnectionsKill(ctx context.Context, c *Call) error {
	if _, ok := c.Flags["older"]; !ok {
		return Userf("connections kill needs --older <age>, e.g. --older 40m; usage: %s", c.Spec.Usage())
	}
	role, older, backends, err := d.oldBackends(ctx, c, "; nothing to terminate")
	if err != nil || len(backends) == 0 {
		return err
	}
	plan := fmt.Sprintf("terminate the %s of role %s whose query started more than %s ago (pg_terminate_backend): pids %s, "+
		"each only if it is still the same backend (pid and start time) and still that old; no other role's, never the bot's own",
		Count(len(backends), "backend", "backends"), role, shortDuration(older), pidList(backends))
	return c.Confirm(plan, func(ctx context.Context, c *Call) error {
		terminated, skipped, err := d.deps.DB.TerminateBackends(ctx, role, older, backends)
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("%s backends older than %s: %d found, %d terminated, %d left", role, shortDuration(older),
			len(backends), len(terminated), len(skipped))
		if len(skipped) > 0 {
			msg += fmt.Sprintf(" (gone, replaced or busy with a new query since the confirmation: pids %s)", pidList(skipped))
		}
		c.Reply("%s", msg)
		return nil
	})
}

// pidList is the backends' pids, comma-separated.
func pidList(bs []kojidb.Backend) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = fmt.Sprint(b.PID)
	}
	return strings.Join(parts, ", ")
}
