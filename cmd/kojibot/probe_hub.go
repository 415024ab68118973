package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojiapi"
	"github.com/fedora-infra/kojibot/config"
)

// hubProbeNeeds derives from the ACL which of the hub's permissions the
// configuration needs: host when capacity, enable or disable may run,
// tag when override may.
func hubProbeNeeds(cfg *config.Config) kojiapi.ProbeNeeds {
	mutating := func(names ...string) bool {
		for _, n := range names {
			if len(cfg.ACL.Commands[n]) > 0 {
				return true
			}
		}
		return false
	}
	return kojiapi.ProbeNeeds{Host: mutating("capacity", "enable", "disable"), Tag: mutating("override")}
}

// runHubProbe logs in to the hub of koji.hub.url, when set, and prints
// what kojiapi's Probe finds: the hub's version, the bot's Koji user, its
// permissions and, with act_as_caller, proxy login. It returns 0 when
// nothing is missing (or no hub is configured), 1 otherwise.
func runHubProbe(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) int {
	if cfg.Koji.Hub.URL == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := kojiapi.New(kojiapi.OptionsFrom(cfg, nil))
	if err != nil {
		fmt.Fprintln(stderr, "error: koji.hub:", err)
		return 1
	}
	defer c.Close()
	missing, err := c.Probe(ctx, hubProbeNeeds(cfg), stdout)
	if err != nil {
		fmt.Fprintln(stderr, "error: koji.hub:", err)
		return 1
	}
	if missing > 0 {
		fmt.Fprintf(stderr, "error: koji hub: %d thing(s) missing\n", missing)
		return 1
	}
	fmt.Fprintln(stdout, "koji hub: everything the configuration needs is there")
	return 0
}
