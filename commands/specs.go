package commands

import (
	"context"
	"fmt"
	"strings"
)

// specs declares every command. It is the single table that parsing, the
// ACL, help and the audit record are driven from.
// specs is the catalogue's table: every command, its arguments, the tier
// the gate checks and its handler (a method of the Dispatcher that runs
// it). It needs no Dispatcher, so check-config reads it without one.
func specs() []*Spec {
	return []*Spec{
		{
			Name: "help", Tier: AnyIdentified,
			Args:     []Arg{{Name: "command", Type: Word, Optional: true}},
			Summary:  "list the commands you may run, or show one command's usage and examples",
			Examples: []string{"help", "help capacity"},
			Run:      (*Dispatcher).runHelp,
		},
		{
			Name: "whoami", Tier: AnyIdentified,
			Summary:  "show your services account, the FAS user it maps to and what you may run",
			Examples: []string{"whoami"},
			Run:      (*Dispatcher).runWhoami,
		},
		{
			Name: "hosts", Tier: AnyIdentified,
			Args:     []Arg{{Name: "glob", Type: HostGlob, Optional: true}},
			Summary:  "list Koji build hosts with load/capacity, enabled, ready and last check-in",
			Examples: []string{"hosts", "hosts ppc*", "hosts xenbuilder?"},
			Run:      (*Dispatcher).runHosts,
		},
		{
			Name: "host", Tier: AnyIdentified,
			Args:     []Arg{{Name: "host", Type: HostName}},
			Summary:  "show one Koji build host in detail",
			Examples: []string{"host ppc3", "host ppc3.fedora.redhat.com"},
			Run:      (*Dispatcher).runHost,
		},
		{
			Name: "confirm", Tier: AnyIdentified,
			Args:     []Arg{{Name: "token", Type: Token}},
			Summary:  "go ahead with a destructive action you asked for (the token is single-use, yours, here, for confirm.ttl)",
			Examples: []string{"confirm k3m9xq2a"},
			Run:      (*Dispatcher).runConfirm,
		},
		{
			Name: "jobs", Tier: AnyIdentified,
			Flags:    []Flag{{Name: "all", Bool: true, Help: "also the recent finished jobs, of earlier runs too"}},
			Summary:  "list the running jobs with their ids, owners and ages (--all: the recent ones, finished too)",
			Examples: []string{"jobs", "jobs --all"},
			Run:      (*Dispatcher).runJobs,
		},
		{
			Name: "cancel", Tier: AnyIdentified, // the job's own command decides who may cancel it
			Args:     []Arg{{Name: "job", Type: JobID}},
			Summary:  "cancel a running job: the remote command is stopped and stopped services are started again",
			Examples: []string{"cancel 7"},
			Run:      (*Dispatcher).runCancel,
		},
		{
			Name:     "capacity",
			Args:     []Arg{{Name: "host", Type: HostName}, {Name: "value", Type: Number}},
			Summary:  "set a host's capacity (task weight) in the Koji database; it must be greater than 1",
			Examples: []string{"capacity ppc3 2", "capacity xenbuilder2.fedora.redhat.com 4.5"},
			Run:      (*Dispatcher).runCapacity,
		},
		{
			Name: "disk", NeedsFleet: true, Tier: AnyIdentified,
			Args:     []Arg{{Name: "target", Type: HostName}},
			Summary:  "df of a host's mounts, of every builder (all) or of the shared mounts (shared); flags those at or over disk.full_percent",
			Examples: []string{"disk xenbuilder2", "disk all", "disk shared"},
			Run:      (*Dispatcher).runDisk,
		},
		{
			Name: "cleanup", NeedsFleet: true, Destructive: true,
			Args: []Arg{{Name: "builder", Type: HostName}},
			Flags: []Flag{
				{Name: "older", Type: Duration, Help: "age of what goes (default cleanup.min_age)"},
				{Name: "dry-run", Bool: true, Help: "show the plan only"},
				{Name: "no-koji-check", Bool: true, Help: "go ahead when the builder maps to no Koji host, or to several: active buildroots are then not protected"},
			},
			Summary:  "the SOP's disk clean-up, made safe: stop the builder's services, delete old buildroots (never active ones, never across mounts or symlinks), start them again",
			Examples: []string{"cleanup xenbuilder2", "cleanup xenbuilder2 --older 3d", "cleanup xenbuilder2 --dry-run", "cleanup xenbuilder2 --no-koji-check"},
			Run:      (*Dispatcher).runCleanup,
		},
		{
			Name: "restart", NeedsFleet: true, Destructive: true,
			Args: []Arg{{Name: "what", Type: Word, Choices: []string{"master", "builders", "all"}},
				{Name: "hosts", Type: HostName, Optional: true, Variadic: true}},
			Summary:  "restart the hub (httpd, then kojira), builders' services, or all: the hub, then only builders that did not reconnect within koji.reconnect_grace",
			Examples: []string{"restart master", "restart builders xenbuilder2", "restart builders", "restart all"},
			Run:      (*Dispatcher).runRestart,
		},
		{
			Name: "reboot", NeedsFleet: true, Destructive: true,
			Args:     []Arg{{Name: "builder", Type: HostName}},
			Summary:  "reboot a builder through its xen host (or over SSH) and wait for SSH to come back",
			Examples: []string{"reboot xenbuilder2"},
			Run:      (*Dispatcher).runReboot,
		},
		{
			Name: "memory", NeedsFleet: true, Destructive: true,
			Args:     []Arg{{Name: "builder", Type: HostName}, {Name: "size", Type: Size, Optional: true}},
			Summary:  "show, or set (with confirmation and a backup), memory = N in the builder's xen config",
			Examples: []string{"memory xenbuilder2", "memory xenbuilder2 6G"},
			Run:      (*Dispatcher).runMemory,
		},
		{
			Name: "override", NeedsFleet: true,
			Args:     []Arg{{Name: "release", Type: Release}, {Name: "nvr", Type: NVR, Variadic: true}},
			Summary:  "tag builds into the release's buildroot override tag and wait for Koji's tasks (the hub's tagBuild, or koji tag-build --wait on the admin host)",
			Examples: []string{"override f8 foo-1.0-1", "override f41 foo-1.0-1.fc41 bar-2.1-3.fc41"},
			Run:      (*Dispatcher).runOverride,
		},
		{
			Name: "connections", Tier: AnyIdentified,
			Flags:    []Flag{{Name: "older", Type: Duration, Help: "default 40m"}},
			Summary:  "list the Koji hub role's database backends whose query started longer ago than --older",
			Examples: []string{"connections", "connections --older 2h"},
			Run:      (*Dispatcher).runConnections,
		},
		{
			Name: "connections kill", Destructive: true,
			Flags:    []Flag{{Name: "older", Type: Duration}},
			Summary:  "terminate the Koji hub role's backends older than --older (never another role's, never the bot's own)",
			Examples: []string{"connections kill --older 40m"},
			Run:      (*Dispatcher).runConnectionsKill,
		},
		{
			Name:     "outage draft",
			Args:     []Arg{{Name: "what", Type: Word}, {Name: "reason", Type: Text, Optional: true, Variadic: true}},
			Summary:  "draft an outage announcement from Fedora's outage template",
			Examples: []string{"outage draft koji /mnt/koji is full"},
			Run:      (*Dispatcher).runOutageDraft,
		},
		{
			Name: "outage show", Tier: AnyIdentified,
			Args:     []Arg{{Name: "id", Type: DraftID, Optional: true}},
			Summary:  "list the outage drafts, or show one in full",
			Examples: []string{"outage show", "outage show o1"},
			Run:      (*Dispatcher).runOutageShow,
		},
		{
			Name:     "enable",
			Args:     []Arg{{Name: "host", Type: HostName}},
			Summary:  "enable a build host in Koji",
			Examples: []string{"enable ppc3"},
			Run:      (*Dispatcher).runEnable,
		},
		{
			Name:     "disable",
			Args:     []Arg{{Name: "host", Type: HostName}, {Name: "reason", Type: Text, Optional: true, Variadic: true}},
			Summary:  "disable a build host in Koji, recording the reason as its comment",
			Examples: []string{"disable ppc3", "disable ppc3 out of memory, see ticket 1234"},
			Run:      (*Dispatcher).runDisable,
		},
	}
}

// may reports whether caller may run spec, without auditing (help, whoami).
func (d *Dispatcher) may(ctx context.Context, c *Call, s *Spec) bool {
	return d.authorize(ctx, c.Req, s).Allowed
}

// allowed lists the command names caller may run.
func (d *Dispatcher) allowed(ctx context.Context, c *Call) []string {
	var names []string
	for _, n := range d.catalogue.Names() {
		if d.may(ctx, c, d.catalogue.Spec(n)) {
			names = append(names, n)
		}
	}
	return names
}

func (d *Dispatcher) runHelp(ctx context.Context, c *Call) error {
	prefix := d.deps.Config.IRC.CommandPrefix
	if name := strings.ToLower(c.Arg("command")); name != "" {
		family := d.catalogue.Family(name)
		if len(family) == 0 {
			return Userf("%s", d.unknownCommand(name))
		}
		var lines []string
		for _, s := range family {
			line := fmt.Sprintf("%s %s — %s", prefix, s.Usage(), s.Summary)
			if s.Destructive {
				line += " (asks for confirmation)"
			}
			if !d.may(ctx, c, s) {
				line += " [you may not run this]"
			}
			lines = append(lines, line)
			if len(s.Examples) > 0 {
				lines = append(lines, "  e.g. "+prefix+" "+strings.Join(s.Examples, " | "+prefix+" "))
			}
		}
		c.Reply("%s", strings.Join(lines, "\n"))
		return nil
	}
	c.Reply("commands you may run: %s — %s help <command> for usage", strings.Join(d.allowed(ctx, c), ", "), prefix)
	return nil
}

func (d *Dispatcher) runWhoami(ctx context.Context, c *Call) error {
	who := "services account " + orNone(c.Req.Account)
	if c.Req.Account == "" {
		who = "not logged in to services"
	}
	c.Reply("%s, FAS user %s; you may run: %s", who, orNone(c.FASUser), strings.Join(d.allowed(ctx, c), ", "))
	return nil
}
