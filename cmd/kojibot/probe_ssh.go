package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/config"
)

// helperView is what `kojibot-helper check` says a machine allows.
type helperView struct {
	services, cleanupDirs, guests []string
	xenConfigDir                  string
}

// parseHelperCheck reads the output of `kojibot-helper check`.
func parseHelperCheck(out string) helperView {
	var v helperView
	for _, line := range strings.Split(out, "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		words := strings.Fields(value)
		switch key {
		case "services":
			v.services = slices.DeleteFunc(words, func(w string) bool { return w == "(none)" })
		case "guests":
			v.guests = slices.DeleteFunc(words, func(w string) bool { return w == "(none)" })
		case "cleanup_dirs":
			v.cleanupDirs = words
		case "xen_config_dir":
			if len(words) == 1 && words[0] != "(none)" {
				v.xenConfigDir = words[0]
			}
		}
	}
	return v
}

// builderHosts are the hosts entries that are builders, as a set.
func builderHosts(cfg *config.Config) map[string]bool {
	out := map[string]bool{}
	for _, b := range cfg.Builders() {
		out[b] = true
	}
	return out
}

// helperGaps lists what the configuration asks of host that its helper
// does not allow: its services, and on a builder the cleanup dirs, on a
// xen host xen.config_dir and its guests.
func helperGaps(cfg *config.Config, host string, v helperView, builder, xen bool) []string {
	var gaps []string
	for _, s := range cfg.Hosts[host].Services {
		if !slices.Contains(v.services, s) {
			gaps = append(gaps, "service "+s)
		}
	}
	if builder {
		for _, d := range cfg.Cleanup.Dirs {
			if !slices.Contains(v.cleanupDirs, d) {
				gaps = append(gaps, "cleanup_dir "+d)
			}
		}
	}
	if xen && v.xenConfigDir != cfg.Xen.ConfigDir {
		gaps = append(gaps, "xen_config_dir "+cfg.Xen.ConfigDir)
	}
	guests := make([]string, 0, len(cfg.Xen.Guests))
	for g, x := range cfg.Xen.Guests {
		if x == host {
			short, _, _ := strings.Cut(g, ".")
			guests = append(guests, short)
		}
	}
	slices.Sort(guests)
	for _, g := range guests {
		if !slices.Contains(v.guests, g) {
			gaps = append(gaps, "guest "+g)
		}
	}
	return gaps
}

// runSSHProbe logs in to every hosts entry and, with ssh.helper set, runs
// `HELPER check` there: the login, sudo and the helper must work, and the
// helper must allow what the configuration asks of that machine. It
// prints one line per host and returns 0 when every host is fine, 1
// otherwise.
func runSSHProbe(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) int {
	if len(cfg.Hosts) == 0 {
		return 0
	}
	f, err := fleet.New(cfg.SSH, cfg.Hosts, nil)
	if err != nil {
		fmt.Fprintln(stderr, "error: ssh:", err)
		return 1
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.SSH.ConnectTimeout+30*time.Second)
	defer cancel()
	builders, xen := builderHosts(cfg), cfg.XenHosts()
	var mu sync.Mutex
	lines := map[string]string{}
	ok := func(host, line string) {
		mu.Lock()
		defer mu.Unlock()
		lines[host] = line
	}
	failed := 0
	errs := f.Each(ctx, f.Hosts(), func(ctx context.Context, host string) error {
		argv := []string{"true"}
		if f.UsesHelper() {
			argv = f.Helper("check")
		}
		res, err := f.Run(ctx, host, argv, fleet.RunOptions{Timeout: cfg.SSH.ConnectTimeout + 10*time.Second})
		switch {
		case err != nil:
			return err
		case res.ExitCode != 0:
			return fmt.Errorf("%s exited %d: %s", strings.Join(argv, " "), res.ExitCode, lastLine(res.Stderr+res.Stdout))
		case !f.UsesHelper():
			ok(host, "ok       ssh "+host+": logged in as "+cfg.SSH.User+" (no ssh.helper)")
			return nil
		}
		if gaps := helperGaps(cfg, host, parseHelperCheck(res.Stdout), builders[host], xen[host]); len(gaps) > 0 {
			return fmt.Errorf("its /etc/kojibot-helper.conf does not allow %s", strings.Join(gaps, ", "))
		}
		ok(host, "ok       ssh "+host+": logged in as "+cfg.SSH.User+", helper allows what the configuration needs")
		return nil
	})
	hosts := f.Hosts()
	slices.Sort(hosts)
	for _, host := range hosts {
		if err := errs[host]; err != nil {
			failed++
			fmt.Fprintf(stdout, "FAILED   ssh %s: %v\n", host, err)
			continue
		}
		fmt.Fprintln(stdout, lines[host])
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "error: %d of %d hosts failed the SSH check; see docs/deploying.md\n", failed, len(cfg.Hosts))
		return 1
	}
	return 0
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
