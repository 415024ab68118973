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

// TestWarningsHelperOverridesCommands: with ssh.helper set, a
// service_command or reboot_command of the operator's own is not used, and
// check-config says so; the defaults draw nothing.
func TestWarningsHelperOverridesCommands(t *testing.T) {
	c := Default()
	c.SSH.Helper = "sudo -n /usr/local/sbin/kojibot-helper"
	if ws := c.Warnings(nil); len(ws) != 0 {
		t.Fatalf("helper with default commands: %v", ws)
	}
	c.SSH.ServiceCommand = "sudo /usr/local/bin/svc {action} {service}"
	c.Xen.RebootCommand = "sudo xl reboot {guest}"
	ws := c.Warnings(nil)
	if len(ws) != 2 || ws[0].Key != "ssh.service_command" || ws[1].Key != "xen.reboot_command" || !strings.Contains(ws[0].Problem, "ssh.helper") {
		t.Fatalf("warnings %v, want ssh.service_command and xen.reboot_command unused", ws)
	}
	c.SSH.Helper = ""
	if ws := c.Warnings(nil); len(ws) != 0 {
		t.Fatalf("no helper: %v", ws)
	}
}
