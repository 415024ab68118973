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

// hostNames lists the configured SSH hosts, sorted.
func (d *Dispatcher) hostNames() []string { return d.deps.Config.HostNames() }

// infraHosts are the configured hosts that are not builders.
func (d *Dispatcher) infraHosts() map[string]bool { return d.deps.Config.InfraHosts() }

// Builders lists the configured hosts that are builders (config.Builders).
func (d *Dispatcher) Builders() []string { return d.deps.Config.Builders() }

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

// kojiMatches returns the Koji hosts a configured builder may stand for:
// the host of the same name when there is one, else every host whose first
// label is the builder's first label, sorted. It is the one rule: a
// command acts on a builder's Koji host only when there is exactly one
// (the clean-up's active-buildroot guard, restart all's check-in test).
func kojiMatches(builder string, hosts []kojidb.Host) []string {
	short, _, _ := strings.Cut(builder, ".")
	var byLabel []string
	for _, h := range hosts {
		if h.Name == builder {
			return []string{h.Name}
		}
		if label, _, _ := strings.Cut(h.Name, "."); label == short {
			byLabel = append(byLabel, h.Name)
		}
	}
	sort.Strings(byLabel)
	return byLabel
}
