package acl

import (
	"context"
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/config"
)

func TestCaseMappingFold(t *testing.T) {
	tests := []struct {
		m    CaseMapping
		a, b string
		same bool
	}{
		{CaseMappingASCII, "Alice", "alice", true},
		{CaseMappingASCII, "a[b]", "a{b}", false},
		{CaseMappingRFC1459, "a[b]\\~", "A{B}|^", true},
		{CaseMappingStrictRFC1459, "a~", "a^", false},
		{CaseMappingStrictRFC1459, "a\\", "a|", true},
		// Unicode folding would make these equal; IRC's mappings never do.
		{CaseMappingASCII, "\u212Aate", "kate", false},
		{CaseMappingRFC1459, "\u212Aate", "Kate", false},
		{CaseMappingRFC1459, "ſam", "sam", false},
		{CaseMappingRFC1459, "ÄLICE", "älice", false},
	}
	for _, tt := range tests {
		if got := tt.m.Equal(tt.a, tt.b); got != tt.same {
			t.Errorf("%s: Equal(%q, %q) = %v, want %v", tt.m, tt.a, tt.b, got, tt.same)
		}
	}
	for token, want := range map[string]CaseMapping{"": CaseMappingRFC1459, "ASCII": CaseMappingASCII,
		"rfc1459": CaseMappingRFC1459, "strict-rfc1459": CaseMappingStrictRFC1459, "rfc7613": CaseMappingASCII} {
		if got := ParseCaseMapping(token); got != want {
			t.Errorf("ParseCaseMapping(%q) = %s, want %s", token, got, want)
		}
	}
}

// TestAccountKeysUseTheNetworksCaseMapping: acl.accounts keys match the
// caller's account by the network's CASEMAPPING, never by Unicode folding.
func TestAccountKeysUseTheNetworksCaseMapping(t *testing.T) {
	cfg := config.ACL{Source: "static",
		Accounts: map[string]string{"kate": "kate", "ops[1]": "carol"},
		Groups:   map[string][]string{"sysadmin-build": {"kate", "carol"}},
		Commands: map[string][]string{"capacity": {"sysadmin-build"}}}
	c := mustNew(t, cfg, Options{})
	ctx := context.Background()
	for _, tt := range []struct {
		account string
		m       CaseMapping
		want    string // FAS user, "" for denied
	}{
		{"KATE", CaseMappingRFC1459, "kate"},
		{"\u212Aate", CaseMappingRFC1459, ""},
		{"\u212Aate", CaseMappingASCII, ""},
		{"OPS{1}", CaseMappingRFC1459, "carol"},
		{"OPS{1}", CaseMappingASCII, ""},
		{"ops[1]", CaseMappingASCII, "carol"},
	} {
		c.SetCaseMapping(tt.m)
		d := c.Authorize(ctx, Caller{Account: tt.account}, "capacity", false)
		if got := d.FASUser; got != tt.want || d.Allowed != (tt.want != "") {
			t.Errorf("%s account %q: FAS user %q allowed %v (%s), want %q", tt.m, tt.account, got, d.Allowed, d.Reason, tt.want)
		}
	}
}

// TestAccountIsFASUserOnlyStatic: the option is refused with FASJSON and,
// with the static source, never hands out a FAS user that acl.accounts
// gives to another account.
func TestAccountIsFASUserOnlyStatic(t *testing.T) {
	_, err := New(config.ACL{Source: "fasjson", FASJSONURL: "http://127.0.0.1:1", AccountIsFASUser: true}, Options{})
	if err == nil || !strings.Contains(err.Error(), "account_is_fas_user") {
		t.Errorf("New with fasjson and account_is_fas_user: %v, want an error naming the key", err)
	}
	cfg := config.ACL{Source: "static", AccountIsFASUser: true,
		Accounts: map[string]string{"alice_irc": "alice"},
		Groups:   map[string][]string{"sysadmin-build": {"alice", "bob"}},
		Commands: map[string][]string{"capacity": {"sysadmin-build"}}}
	c := mustNew(t, cfg, Options{})
	ctx := context.Background()
	if d := c.Authorize(ctx, Caller{Account: "bob"}, "capacity", false); !d.Allowed || d.FASUser != "bob" {
		t.Errorf("bob: %+v, want allowed as FAS bob", d)
	}
	for _, acct := range []string{"alice", "Alice"} {
		if d := c.Authorize(ctx, Caller{Account: acct}, "capacity", false); d.Allowed || d.FASUser != "" {
			t.Errorf("%s: %+v, want denied: acl.accounts gives FAS alice to alice_irc", acct, d)
		}
	}
	if d := c.Authorize(ctx, Caller{Account: "alice_irc"}, "capacity", false); !d.Allowed || d.FASUser != "alice" {
		t.Errorf("alice_irc: %+v, want allowed as FAS alice", d)
	}
	// Off by default: the account name alone links nothing.
	cfg.AccountIsFASUser = false
	c = mustNew(t, cfg, Options{})
	if d := c.Authorize(ctx, Caller{Account: "bob"}, "capacity", false); d.Allowed {
		t.Errorf("bob without account_is_fas_user: allowed, want not linked")
	}
}
