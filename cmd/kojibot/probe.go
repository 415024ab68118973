package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/config"
)

// probeNeeds derives from the ACL which database uses the configuration
// enables: a command that changes anything runs only with an acl.commands
// entry naming someone; a read-only one unless its entry names nobody.
func probeNeeds(cfg *config.Config) kojidb.ProbeNeeds {
	mutating := func(names ...string) bool {
		for _, n := range names {
			if len(cfg.ACL.Commands[n]) > 0 {
				return true
			}
		}
		return false
	}
	groups, listed := cfg.ACL.Commands["connections"]
	return kojidb.ProbeNeeds{
		HostWrites:   mutating("capacity", "enable", "disable"),
		SeeBackends:  !listed || len(groups) > 0,
		KillBackends: mutating("connections kill"),
		// With the hub, the database serves connections alone.
		HubHosts: cfg.Koji.Hub.URL != "",
	}
}

// runProbe connects to the Koji database and checks every privilege the
// configuration needs (kojidb.Probe), printing one line per check. It
// returns 0 when nothing is missing, 1 otherwise (or when it cannot ask).
func runProbe(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) int {
	if cfg.Koji.DB.DSN.Reveal() == "" {
		// check-config accepts that only with koji.hub.url.
		fmt.Fprintln(stdout, "koji database: not configured (koji.db.dsn is empty): `connections` and the connections watch are off")
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	db, err := kojidb.Open(ctx, cfg.Koji.DB.DSN.Reveal(), cfg.Koji.User, nil)
	if err != nil {
		fmt.Fprintln(stderr, "error: koji.db.dsn:", err)
		return 1
	}
	defer db.Close()
	gen, results, err := db.Probe(ctx, probeNeeds(cfg))
	if err != nil {
		fmt.Fprintln(stderr, "error: probing the Koji database:", err)
		return 1
	}
	fmt.Fprintf(stdout, "koji database: schema %s\n", gen)
	missing := 0
	for _, r := range results {
		if r.OK {
			fmt.Fprintf(stdout, "ok       %s (%s)\n", r.What, r.For)
			continue
		}
		missing++
		fmt.Fprintf(stdout, "MISSING  %s (%s): %s\n", r.What, r.For, r.Grant)
	}
	if missing > 0 {
		fmt.Fprintf(stderr, "error: %d privilege(s) missing; see docs/koji-db-grants.sql\n", missing)
		return 1
	}
	fmt.Fprintln(stdout, "koji database: every privilege the configuration needs is there")
	return 0
}
