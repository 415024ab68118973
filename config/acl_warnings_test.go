package config

import (
	"strings"
	"testing"
)

// TestWarningsParentEntry: a parent's acl.commands entry draws a warning
// for each mutating subcommand left without an entry of its own.
func TestWarningsParentEntry(t *testing.T) {
	c := Default()
	c.ACL.Commands = map[string][]string{"connections": {"@identified"}, "outage": {"sysadmin-build"},
		"outage draft": {"sysadmin-build"}}
	ws := c.Warnings([]string{"connections kill", "outage draft"})
	if len(ws) != 1 || ws[0].Key != "acl.commands[connections]" || !strings.Contains(ws[0].Problem, "connections kill") {
		t.Fatalf("warnings %v, want one about acl.commands[connections] naming connections kill", ws)
	}
}

// TestAccountIsFASUserWithFASJSON: check-config refuses the option with
// the FASJSON source.
func TestAccountIsFASUserWithFASJSON(t *testing.T) {
	c := Default()
	c.ACL.Source, c.ACL.AccountIsFASUser = "fasjson", true
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "acl.account_is_fas_user") {
		t.Errorf("Validate: %v, want an error naming acl.account_is_fas_user", err)
	}
	c.ACL.Source = "static"
	if err := c.Validate(); err != nil && strings.Contains(err.Error(), "account_is_fas_user") {
		t.Errorf("static source with account_is_fas_user refused: %v", err)
	}
}
