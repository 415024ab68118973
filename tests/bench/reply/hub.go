package main

import (
	"context"
	"fmt"

	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

// benchHost is the host `host ppc3` resolves to on the hub.
const benchHost = "ppc3.fedora.redhat.com"

// startHub starts the upstream Koji hub, with KeepAlive on as a production
// hub has it, with the bench's hosts (ppc3 and a
// few more, as the database fixture has) and the bot's Koji user, and
// returns it, the bot's koji section (the hub by certificate, no
// database), and the raw call: listHosts in a session of the bot's user,
// over one kept connection.
func startHub(ctx context.Context) (*realkoji.Hub, map[string]any, func(context.Context) error, error) {
	hub, err := realkoji.Start(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	// A production hub keeps connections alive; the harness does not
	// unless asked.
	if err := hub.EnableKeepAlive(ctx); err != nil {
		hub.Close()
		return nil, nil, nil, err
	}
	seed := realkoji.Seed{Users: map[string][]string{"kojibot": {"host"}}}
	for _, name := range []string{benchHost, "ppc2.fedora.redhat.com", "x86-01.phx2.fedoraproject.org", "x86-01.iad2.fedoraproject.org"} {
		seed.Hosts = append(seed.Hosts, realkoji.SeedHost{Name: name, Arches: "ppc ppc64", Capacity: 4})
	}
	if _, err := hub.Seed(ctx, seed); err != nil {
		hub.Close()
		return nil, nil, nil, err
	}
	cert, err := hub.Cert("kojibot")
	if err != nil {
		hub.Close()
		return nil, nil, nil, err
	}
	client, err := hub.Login(ctx, "kojibot", nil)
	if err != nil {
		hub.Close()
		return nil, nil, nil, err
	}
	koji := map[string]any{
		"hub": map[string]any{"url": hub.URL, "ca_file": hub.CACert(), "auth": "certificate", "cert_file": cert},
		"db":  map[string]any{"dsn": ""},
	}
	call := func(ctx context.Context) error {
		hosts, err := client.Structs(ctx, "listHosts")
		if err != nil {
			return err
		}
		if len(hosts) != len(seed.Hosts) {
			return fmt.Errorf("listHosts answered %d hosts, want %d", len(hosts), len(seed.Hosts))
		}
		return nil
	}
	return hub, koji, call, nil
}
