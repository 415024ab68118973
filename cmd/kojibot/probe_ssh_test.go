package main

import (
	"slices"
	"testing"

	"github.com/fedora-infra/kojibot/config"
)

// What `kojibot-helper check` prints is read back, and whatever the
// configuration asks of a machine that its helper does not allow is named.
func TestHelperGaps(t *testing.T) {
	v := parseHelperCheck("services: kojid plague-builder\ncleanup_dirs: /var/lib/mock /mnt/build \nxen_config_dir: (none)\n")
	if !slices.Equal(v.services, []string{"kojid", "plague-builder"}) || !slices.Equal(v.cleanupDirs, []string{"/var/lib/mock", "/mnt/build"}) || v.xenConfigDir != "" {
		t.Fatalf("parsed %+v", v)
	}
	cfg := config.Default()
	cfg.Hosts = map[string]config.Host{
		"xenbuilder2": {Address: "b:22", Services: []string{"kojid", "mock-cleaner"}},
		"xen4":        {Address: "x:22"},
	}
	cfg.Xen.Guests = map[string]string{"xenbuilder2": "xen4"}
	cfg.Cleanup.Dirs = []string{"/var/lib/mock", "/srv/build"}
	b, x := builderHosts(cfg), cfg.XenHosts()
	if !b["xenbuilder2"] || b["xen4"] || !x["xen4"] {
		t.Fatalf("builders %v, xen hosts %v", b, x)
	}
	got := helperGaps(cfg, "xenbuilder2", v, b["xenbuilder2"], x["xenbuilder2"])
	if !slices.Equal(got, []string{"service mock-cleaner", "cleanup_dir /srv/build"}) {
		t.Fatalf("gaps on the builder: %q", got)
	}
	if got := helperGaps(cfg, "xen4", parseHelperCheck("services: (none)\nxen_config_dir: /etc/xen\nguests: xenbuilder2\n"), false, true); len(got) != 0 {
		t.Fatalf("gaps on the xen host: %q", got)
	}
	if got := helperGaps(cfg, "xen4", parseHelperCheck("services: (none)\nxen_config_dir: (none)\nguests: (none)\n"), false, true); !slices.Equal(got, []string{"xen_config_dir /etc/xen", "guest xenbuilder2"}) {
		t.Fatalf("xen host without xen_config_dir: %q", got)
	}
}
