package acl

import (
	"context"
	"testing"

	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness/fasjsonfake"
)

func TestResolveMatrixStatic(t *testing.T) {
	c, err := New(config.ACL{
		Source:   "static",
		Accounts: map[string]string{"@ops:example.org": "carol", "alice": "alice"},
		Groups:   map[string][]string{"sysadmin-build": {"alice", "carol"}},
		Commands: map[string][]string{"capacity": {"sysadmin-build"}},
	}, Options{MatrixFASServer: "fedora.im"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		id      string
		allowed bool
		user    string
	}{
		{"@alice:fedora.im", true, "alice"},       // localpart on fas_server
		{"@alice:example.org", false, ""},         // same localpart elsewhere: not linked
		{"@ops:example.org", true, "carol"},       // acl.accounts keyed by Matrix id
		{"@bob:fedora.im", false, "bob"},          // identified, not in the group
		{"@12345:fedora.im", false, ""},           // guest
		{"alice", false, ""},                      // not a Matrix id: never the IRC rules
		{"@alice:fedora.im:8448", false, "alice"}, // other port is another server
	} {
		d := c.Authorize(ctx, Caller{Account: tt.id, Matrix: true}, "capacity", false)
		if tt.id == "@alice:fedora.im:8448" {
			// "fedora.im:8448" is not matrix.fas_server.
			tt.user = ""
		}
		if d.Allowed != tt.allowed || d.FASUser != tt.user {
			t.Errorf("%s: allowed %v user %q (%s), want %v %q", tt.id, d.Allowed, d.FASUser, d.Reason, tt.allowed, tt.user)
		}
	}
	// The IRC rules are untouched: an IRC account "alice" still maps by
	// acl.accounts, and a Matrix-shaped IRC account is not resolved the
	// Matrix way.
	if d := c.Authorize(ctx, Caller{Account: "alice"}, "capacity", false); !d.Allowed {
		t.Errorf("IRC alice denied: %s", d.Reason)
	}
	if d := c.Authorize(ctx, Caller{Account: "@alice:fedora.im"}, "capacity", false); d.Allowed {
		t.Errorf("IRC account shaped like a Matrix id allowed")
	}
}

func TestResolveMatrixFASJSON(t *testing.T) {
	s, err := fasjsonfake.Start("127.0.0.1:0", map[string]fasjsonfake.User{
		"dave": {Groups: []string{"sysadmin-build"}, IRCNicks: []string{"matrix://example.org/dave_m"}},
		"erin": {Groups: []string{"sysadmin-build"}, IRCNicks: []string{"matrix:/erin_m"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfg := fasjsonConfig(s.URL())
	cfg.Commands = map[string][]string{"capacity": {"sysadmin-build"}}
	c, err := New(cfg, Options{MatrixFASServer: "chat.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		id      string
		allowed bool
		user    string
	}{
		{"@dave_m:example.org", true, "dave"},
		{"@erin_m:fedora.im", true, "erin"}, // matrix:/ means fedora.im
		{"@erin_m:example.org", false, ""},
		{"@nobody:example.org", false, ""},
	} {
		d := c.Authorize(ctx, Caller{Account: tt.id, Matrix: true}, "capacity", false)
		if d.Allowed != tt.allowed || d.FASUser != tt.user {
			t.Errorf("%s: allowed %v user %q (%s), want %v %q", tt.id, d.Allowed, d.FASUser, d.Reason, tt.allowed, tt.user)
		}
	}
}
