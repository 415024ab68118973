package kojihub

import (
	"context"
	"testing"

	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

// TestCertificateLogin: the bot logs in with its certificate on
// /kojihub/ssllogin and the hub knows it as its Koji user, logged in by
// SSL (authtype 2); the hub's Koji-Version header is kept.
func TestCertificateLogin(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{})
	c := certClient(t, hub, nil)
	ctx := context.Background()
	v, err := c.Call(ctx, "getLoggedInUser")
	if err != nil {
		t.Fatal(err)
	}
	u, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("getLoggedInUser answered %T %v", v, v)
	}
	if u["name"] != botUser || u["authtype"] != int64(2) {
		t.Fatalf("logged in as %v (authtype %v), want %s by SSL (2)", u["name"], u["authtype"], botUser)
	}
	if got := c.HubVersion(); got != "1.35.3" {
		t.Errorf("HubVersion() = %q, want 1.35.3", got)
	}
}
