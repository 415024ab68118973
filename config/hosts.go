package config

import "sort"

// HostNames lists the hosts entries, sorted.
func (c *Config) HostNames() []string {
	names := make([]string, 0, len(c.Hosts))
	for n := range c.Hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// XenHosts are the hosts entries that carry xen guests: the values of
// xen.guests but "disabled".
func (c *Config) XenHosts() map[string]bool {
	out := map[string]bool{}
	for _, x := range c.Xen.Guests {
		if x != disabled {
			out[x] = true
		}
	}
	return out
}

// InfraHosts are the hosts entries that are not builders: the hubs, the
// admin host, the shared mounts' host and the xen hosts.
func (c *Config) InfraHosts() map[string]bool {
	infra := c.XenHosts()
	for _, h := range c.Koji.Hubs {
		infra[h] = true
	}
	for _, h := range []string{c.Koji.AdminHost, c.Disk.SharedFrom} {
		if h != "" {
			infra[h] = true
		}
	}
	return infra
}

// Builders lists, sorted, the hosts entries that are builders: every one
// that is not among InfraHosts. It is the one rule, for the commands, the
// watcher and check-config --probe.
func (c *Config) Builders() []string {
	infra := c.InfraHosts()
	var out []string
	for _, n := range c.HostNames() {
		if !infra[n] {
			out = append(out, n)
		}
	}
	return out
}
