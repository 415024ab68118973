package commands

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/state"
)

// restartService restarts one service and checks it is active again. A
// restart stops the service: the journal records it first, and the record
// is done once the service is active again.
func (d *Dispatcher) restartService(ctx context.Context, f Fleet, c *Call, host, service string) error {
	if err := d.journalOpen(c, host, state.KindService, service); err != nil {
		return fmt.Errorf("%s on %s: %w", service, host, err)
	}
	if err := serviceStep(ctx, f, host, "restart", service); err != nil {
		if kind, ok := fleet.Kind(err); ok { // the kind only, never an address
			return fmt.Errorf("%s on %s: %s", service, host, kind)
		}
		return fmt.Errorf("%s: %w", host, err)
	}
	d.journalDone(c, host, state.KindService, service)
	return nil
}

// restartMaster restarts each hub's services in their configured order
// (httpd, then kojira), stopping at the first failure.
func (d *Dispatcher) restartMaster(ctx context.Context, f Fleet, c *Call) error {
	for _, hub := range d.deps.Config.Koji.Hubs {
		for _, s := range d.servicesOf(hub) {
			if err := d.restartService(ctx, f, c, hub, s); err != nil {
				return err
			}
			c.Reply("%s: %s restarted and active", hub, s)
		}
	}
	return nil
}

// restartBuilders restarts every service of each builder, builders in
// parallel; a failure on one does not stop the others.
func (d *Dispatcher) restartBuilders(ctx context.Context, f Fleet, c *Call, builders []string) error {
	if len(builders) == 0 {
		c.Reply("no builders to restart")
		return nil
	}
	var mu sync.Mutex
	var ok []string
	results := f.Each(ctx, builders, func(ctx context.Context, host string) error {
		for _, s := range d.servicesOf(host) {
			if err := d.restartService(ctx, f, c, host, s); err != nil {
				return err
			}
		}
		mu.Lock()
		ok = append(ok, host)
		mu.Unlock()
		return nil
	})
	sort.Strings(ok)
	var errs []error
	for _, h := range builders {
		if err := results[h]; err != nil {
			errs = append(errs, err)
		}
	}
	if len(ok) > 0 {
		c.Reply("restarted the services of %s, all active again: %s", Count(len(ok), "builder", "builders"), strings.Join(ok, ", "))
	}
	return errors.Join(errs...)
}

// restartTargets resolves the builders named, or all builders.
func (d *Dispatcher) restartTargets(names []string) ([]string, error) {
	if len(names) == 0 {
		return d.Builders(), nil
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		b, err := d.builder(n)
		if err != nil {
			return nil, err
		}
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	return out, nil
}

func (d *Dispatcher) runRestart(ctx context.Context, c *Call) error {
	f := d.deps.Fleet // the dispatcher checked it is there (NeedsFleet)
	cfg := d.deps.Config
	what := c.Arg("what")
	names := c.Args["hosts"]
	if what != "builders" && len(names) > 0 {
		return Userf("only restart builders takes host names; usage: %s", c.Spec.Usage())
	}
	var plan string
	var locked []string
	var hubSteps []string
	for _, hub := range cfg.Koji.Hubs {
		hubSteps = append(hubSteps, fmt.Sprintf("%s on %s", strings.Join(d.servicesOf(hub), " then "), hub))
	}
	switch what {
	case "master":
		if len(cfg.Koji.Hubs) == 0 {
			return Userf("no hubs configured (koji.hubs)")
		}
		plan = "restart " + strings.Join(hubSteps, "; ")
		locked = cfg.Koji.Hubs
	case "builders":
		targets, err := d.restartTargets(names)
		if err != nil {
			return err
		}
		plan = fmt.Sprintf("restart the services of %s: %s", Count(len(targets), "builder", "builders"), strings.Join(targets, ", "))
		locked = targets
		names = targets
	case "all":
		plan = fmt.Sprintf("restart %s; wait %s; then restart only the builders that have not checked in with Koji since",
			strings.Join(hubSteps, "; "), cfg.Koji.ReconnectGrace)
		locked = append(append([]string{}, cfg.Koji.Hubs...), d.Builders()...)
	}
	return c.Confirm(plan, func(ctx context.Context, c *Call) error {
		return c.StartJob(locked, func(ctx context.Context, c *Call) error {
			switch what {
			case "master":
				return d.restartMaster(ctx, f, c)
			case "builders":
				return d.restartBuilders(ctx, f, c, names)
			}
			return d.restartAll(ctx, f, c)
		})
	})
}

// restartAll restarts the hub, waits koji.reconnect_grace, then restarts
// only the builders whose Koji host has not checked in since. "Since" is
// decided on durations only: the check-in's age as the database computes it
// (its now() less the check-in) against the time elapsed since the hub
// restart, so that neither the bot's clock nor time zones matter.
func (d *Dispatcher) restartAll(ctx context.Context, f Fleet, c *Call) error {
	if err := d.restartMaster(ctx, f, c); err != nil {
		return fmt.Errorf("hub restart failed, builders left alone: %w", err)
	}
	restarted := d.deps.Now()
	grace := d.deps.Config.Koji.ReconnectGrace
	c.Reply("hub restarted; waiting %s for builders to reconnect by themselves", grace)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(grace):
	}
	hosts, err := d.koji().Hosts(ctx)
	if err != nil {
		return err
	}
	r := sortCheckins(d.Builders(), hosts, d.deps.Now().Sub(restarted))
	msg := fmt.Sprintf("%s checked in since the hub restart", Count(len(r.back), "builder", "builders"))
	if len(r.silent) > 0 {
		msg += fmt.Sprintf("; %d did not and will be restarted: %s", len(r.silent), strings.Join(r.silent, ", "))
	}
	if len(r.unknown) > 0 {
		msg += fmt.Sprintf("; %s and were left alone: %s", Count(len(r.unknown), "is not a Koji host", "are not Koji hosts"), strings.Join(r.unknown, ", "))
	}
	for _, a := range r.ambiguous {
		msg += fmt.Sprintf("; %s maps to %d Koji hosts (%s) and was left alone", a.builder, len(a.hosts), strings.Join(a.hosts, ", "))
	}
	c.Reply("%s", msg)
	return d.restartBuilders(ctx, f, c, r.silent)
}

// checkins is restart all's decision on the configured builders: silent
// ones are restarted; the others are left alone, each for its reason.
type checkins struct {
	back      []string // checked in since the hub restart
	silent    []string // did not: restarted
	unknown   []string // map to no Koji host
	ambiguous []ambiguousBuilder
}

// ambiguousBuilder is a builder that maps to several Koji hosts.
type ambiguousBuilder struct {
	builder string
	hosts   []string
}

// sortCheckins decides, for each builder, whether its Koji host checked in
// within elapsed (the time since the hub restart, against the check-in's
// age as the database computes it). A builder is matched to its Koji host
// by kojiMatches, as the clean-up matches it: one that maps to none or to
// several is never restarted on a guess.
func sortCheckins(builders []string, hosts []kojidb.Host, elapsed time.Duration) checkins {
	byName := make(map[string]kojidb.Host, len(hosts))
	for _, h := range hosts {
		byName[h.Name] = h
	}
	var r checkins
	for _, b := range builders {
		switch names := kojiMatches(b, hosts); len(names) {
		case 0:
			r.unknown = append(r.unknown, b)
		case 1:
			if h := byName[names[0]]; !h.LastCheckin.IsZero() && h.CheckinAge < elapsed {
				r.back = append(r.back, b)
			} else {
				r.silent = append(r.silent, b)
			}
		default:
			r.ambiguous = append(r.ambiguous, ambiguousBuilder{builder: b, hosts: names})
		}
	}
	return r
}
