package config

import (
	"reflect"
	"testing"
)

// TestBuilders: the builders are the hosts entries that are not a hub,
// the admin host, the shared mounts' host or a xen host; a guest marked
// disabled makes no host a xen host.
func TestBuilders(t *testing.T) {
	c := Default()
	c.Hosts = map[string]Host{}
	for _, h := range []string{"koji-hub", "koji-admin", "nfs", "xen3", "xenbuilder1", "xenbuilder2", "ppc3"} {
		c.Hosts[h] = Host{Address: h + ":22"}
	}
	c.Koji.Hubs, c.Koji.AdminHost, c.Disk.SharedFrom = []string{"koji-hub"}, "koji-admin", "nfs"
	c.Xen.Guests = map[string]string{"xenbuilder1": "xen3", "xenbuilder2": disabled}
	if got, want := c.Builders(), []string{"ppc3", "xenbuilder1", "xenbuilder2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Builders() = %v, want %v", got, want)
	}
	if got := c.XenHosts(); !reflect.DeepEqual(got, map[string]bool{"xen3": true}) {
		t.Errorf("XenHosts() = %v", got)
	}
}
