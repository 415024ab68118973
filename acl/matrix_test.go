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

// TestMatrixIdentifiedNeedsFASUser: on Matrix, @identified (the default of
// a read-only command) means a Matrix id that resolves to a FAS user;
// guests and accounts on other homeservers that resolve to none are not
// identified. On IRC it still means logged in to services.
func TestMatrixIdentifiedNeedsFASUser(t *testing.T) {
	c, err := New(config.ACL{
		Source:   "static",
		Accounts: map[string]string{"@ops:example.org": "carol"},
		Commands: map[string][]string{"whoami": {"@identified"}},
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
		{"@alice:fedora.im", true, "alice"},
		{"@ops:example.org", true, "carol"},
		{"@12345:fedora.im", false, ""},      // a guest
		{"@mallory:evil.example", false, ""}, // another homeserver, no link
		{"@alice:example.org", false, ""},
	} {
		for _, cmd := range []string{"connections", "whoami"} { // the default rule, and an explicit entry
			d := c.Authorize(ctx, Caller{Account: tt.id, Matrix: true}, cmd, true)
			if d.Allowed != tt.allowed || d.FASUser != tt.user {
				t.Errorf("%s %s: allowed %v user %q (%s), want %v %q", tt.id, cmd, d.Allowed, d.FASUser, d.Reason, tt.allowed, tt.user)
			}
			if !d.Allowed && d.Reason == "" {
				t.Errorf("%s %s: denied without a reason", tt.id, cmd)
			}
		}
	}
	if d := c.Authorize(ctx, Caller{Account: "someone"}, "connections", true); !d.Allowed {
		t.Errorf("IRC account denied a read-only command: %s", d.Reason)
	}
}

// TestMatrixAccountsKeysExact: acl.accounts keys that start with "@" match
// Matrix callers only, and exactly but for the server name's case; IRC
// accounts never match them, and other keys keep the IRC case mapping.
func TestMatrixAccountsKeysExact(t *testing.T) {
	c, err := New(config.ACL{
		Source:   "static",
		Accounts: map[string]string{"@OPS:Example.org": "carol", "@a[b:example.org": "dave", "Erin[m]": "erin"},
		Groups:   map[string][]string{"sysadmin-build": {"carol", "dave", "erin"}},
		Commands: map[string][]string{"capacity": {"sysadmin-build"}},
	}, Options{MatrixFASServer: "fedora.im"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		caller Caller
		user   string
	}{
		{Caller{Account: "@OPS:example.org", Matrix: true}, "carol"}, // the server name's case does not matter
		{Caller{Account: "@OPS:EXAMPLE.ORG", Matrix: true}, "carol"},
		{Caller{Account: "@ops:example.org", Matrix: true}, ""}, // the localpart's does
		{Caller{Account: "@a[b:example.org", Matrix: true}, "dave"},
		{Caller{Account: "@a{b:example.org", Matrix: true}, ""}, // no rfc1459 folding
		{Caller{Account: "@OPS:Example.org"}, ""},               // an IRC account spelling a Matrix id
		{Caller{Account: "@ops:example.org"}, ""},
		{Caller{Account: "@a{b:example.org"}, ""},
		{Caller{Account: "erin{M}"}, "erin"},           // IRC keys fold as before
		{Caller{Account: "Erin[m]", Matrix: true}, ""}, // and never match a Matrix caller
	} {
		d := c.Authorize(ctx, tt.caller, "capacity", false)
		if d.Allowed != (tt.user != "") || d.FASUser != tt.user {
			t.Errorf("%+v: allowed %v user %q (%s), want user %q", tt.caller, d.Allowed, d.FASUser, d.Reason, tt.user)
		}
	}
}
