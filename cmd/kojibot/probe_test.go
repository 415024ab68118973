package main

import (
	"testing"

	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/config"
)

// TestProbeNeeds: what --probe checks follows the ACL: a mutating command
// needs an entry naming someone, a read-only one runs unless its entry
// names nobody.
func TestProbeNeeds(t *testing.T) {
	tests := []struct {
		name     string
		commands map[string][]string
		want     kojidb.ProbeNeeds
	}{
		{"nothing configured", nil, kojidb.ProbeNeeds{SeeBackends: true}},
		{"capacity", map[string][]string{"capacity": {"sysadmin-build"}}, kojidb.ProbeNeeds{HostWrites: true, SeeBackends: true}},
		{"disable only", map[string][]string{"disable": {"g"}}, kojidb.ProbeNeeds{HostWrites: true, SeeBackends: true}},
		{"kill", map[string][]string{"connections kill": {"g"}}, kojidb.ProbeNeeds{SeeBackends: true, KillBackends: true}},
		{"empty entries grant nobody", map[string][]string{"capacity": {}, "connections kill": {}, "connections": {}}, kojidb.ProbeNeeds{}},
	}
	for _, tt := range tests {
		cfg := &config.Config{}
		cfg.ACL.Commands = tt.commands
		if got := probeNeeds(cfg); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
	// With the hub, the database serves connections alone.
	cfg := &config.Config{}
	cfg.ACL.Commands = map[string][]string{"capacity": {"g"}}
	cfg.Koji.Hub.URL = "https://koji.example.org/kojihub"
	if got, want := probeNeeds(cfg), (kojidb.ProbeNeeds{HostWrites: true, SeeBackends: true, HubHosts: true}); got != want {
		t.Errorf("with the hub: %+v, want %+v", got, want)
	}
}
