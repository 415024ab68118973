package commands

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/kojidb"
)

// fleetOrError returns the fleet, or a UserError when SSH is not configured.
func (d *Dispatcher) fleetOrError() (Fleet, error) {
	if d.deps.Fleet == nil {
		return nil, Userf("SSH is not configured (ssh: and hosts: in the configuration); nothing was done")
	}
	return d.deps.Fleet, nil
}

// hostNames lists the configured SSH hosts, sorted.
func (d *Dispatcher) hostNames() []string {
	names := make([]string, 0, len(d.deps.Config.Hosts))
	for n := range d.deps.Config.Hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// infraHosts are the configured hosts that are not builders: the hubs,
// the admin host, the shared-mount host and the xen hosts.
func (d *Dispatcher) infraHosts() map[string]bool {
	cfg := d.deps.Config
	infra := map[string]bool{}
	for _, h := range cfg.Koji.Hubs {
		infra[h] = true
	}
	if cfg.Koji.AdminHost != "" {
		infra[cfg.Koji.AdminHost] = true
	}
	if cfg.Disk.SharedFrom != "" {
		infra[cfg.Disk.SharedFrom] = true
	}
	for _, x := range cfg.Xen.Guests {
		infra[x] = true
	}
	return infra
}

// Builders lists the configured hosts that are builders: every hosts entry
// that is not a hub, the admin host, the shared-mount host or a xen host.
func (d *Dispatcher) Builders() []string {
	infra := d.infraHosts()
	var out []string
	for _, n := range d.hostNames() {
		if !infra[n] {
			out = append(out, n)
		}
	}
	return out
}

// machine resolves a caller's name against the configured SSH hosts.
func (d *Dispatcher) machine(query string) (string, error) {
	return ResolveName("host", query, d.hostNames())
}

// builder resolves a caller's name to a configured builder.
func (d *Dispatcher) builder(query string) (string, error) {
	name, err := d.machine(query)
	if err != nil {
		return "", err
	}
	if d.infraHosts()[name] {
		return "", Userf("%s is not a builder (it is a hub, admin, shared-mount or xen host)", name)
	}
	return name, nil
}

// kojiNameFor finds the Koji host a configured builder stands for: the same
// name, or the Koji host whose first label is the builder's name.
func kojiNameFor(builder string, hosts []kojidb.Host) (string, bool) {
	short, _, _ := strings.Cut(builder, ".")
	var byLabel []string
	for _, h := range hosts {
		if h.Name == builder {
			return h.Name, true
		}
		if label, _, _ := strings.Cut(h.Name, "."); label == short {
			byLabel = append(byLabel, h.Name)
		}
	}
	if len(byLabel) == 1 {
		return byLabel[0], true
	}
	return "", false
}

// perHostTimeout bounds one quick remote command (df, is-active) so that a
// hung host cannot hold up a fan-out.
func (d *Dispatcher) perHostTimeout() time.Duration {
	t := 2 * d.deps.Config.SSH.ConnectTimeout
	if t < 5*time.Second {
		t = 5 * time.Second
	}
	return t
}

// usageText renders a df result: "/var/lib/mock 93% (1.1 GiB free) FULL".
func (d *Dispatcher) usageText(u fleet.Usage) string {
	s := fmt.Sprintf("%s %.0f%% (%s free)", u.Path, u.Percent, humanBytes(u.Avail))
	if u.Percent >= d.deps.Config.Disk.FullPercent {
		s += " FULL"
	}
	return s
}

// servicesOf returns the services of a configured host.
func (d *Dispatcher) servicesOf(host string) []string {
	return slices.Clone(d.deps.Config.Hosts[host].Services)
}
