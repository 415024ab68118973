package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

// TestHubProbe runs check-config --probe's hub part against the real hub:
// exit 0 when the bot's Koji user has what the ACL needs, 1 naming what
// is missing, 1 with a clear error when the hub does not answer; nothing
// at all without koji.hub.url.
func TestHubProbe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	hub, err := realkoji.Start(ctx)
	if err != nil {
		t.Fatalf("cannot start the Koji hub: %v", err)
	}
	t.Cleanup(hub.Close)
	if _, err := hub.Seed(ctx, realkoji.Seed{Users: map[string][]string{"kojibot": {"host"}, "nobody": nil}}); err != nil {
		t.Fatal(err)
	}
	cfgFor := func(user string) *config.Config {
		pem, err := hub.Cert(user)
		if err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.ACL.Commands = map[string][]string{"capacity": {"sysadmin-build"}}
		cfg.Koji.Hub = config.KojiHub{URL: hub.URL, CAFile: hub.CACert(), Auth: "certificate", CertFile: pem}
		return cfg
	}
	run := func(cfg *config.Config) (int, string, string) {
		var stdout, stderr strings.Builder
		code := runHubProbe(ctx, cfg, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	code, out, errOut := run(cfgFor("kojibot"))
	if code != 0 || !strings.Contains(out, "koji hub: Koji 1.35.3, logged in as kojibot") || !strings.Contains(out, "ok       the host permission") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(cfgFor("nobody"))
	if code != 1 || !strings.Contains(out, "MISSING  the host permission") || !strings.Contains(errOut, "1 thing(s) missing") {
		t.Fatalf("a user without host: exit %d\n%s%s", code, out, errOut)
	}
	down := cfgFor("kojibot")
	down.Koji.Hub.URL = "https://localhost:1/kojihub"
	code, out, errOut = run(down)
	if code != 1 || errOut != "error: koji.hub: the Koji hub is not answering\n" {
		t.Fatalf("a hub down: exit %d\n%s%s", code, out, errOut)
	}
	none := cfgFor("kojibot")
	none.Koji.Hub.URL = ""
	if code, out, errOut = run(none); code != 0 || out != "" || errOut != "" {
		t.Fatalf("no hub: exit %d\n%s%s", code, out, errOut)
	}
}
