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
	c.IRC.Server = "irc.fedora.example"
	if err := c.Validate(); err != nil && strings.Contains(err.Error(), "account_is_fas_user") {
		t.Errorf("static source with account_is_fas_user on a private network refused: %v", err)
	}
}

// TestAccountIsFASUserOnPublicNetwork: on a network where anyone can
// register any free account name, check-config refuses
// acl.account_is_fas_user; on another network it warns, naming the risk;
// with the option off it says nothing.
func TestAccountIsFASUserOnPublicNetwork(t *testing.T) {
	for _, server := range []string{"irc.libera.chat", "IRC.Libera.Chat.", "irc.oftc.net", "irc.hackint.org"} {
		c := Default()
		c.IRC.Server = server
		c.ACL.AccountIsFASUser = true
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "acl.account_is_fas_user") || !strings.Contains(err.Error(), "public network") {
			t.Errorf("%s: Validate: %v, want acl.account_is_fas_user refused on a public network", server, err)
		}
		c.ACL.AccountIsFASUser = false
		if err := c.Validate(); err != nil && strings.Contains(err.Error(), "account_is_fas_user") {
			t.Errorf("%s: option off refused: %v", server, err)
		}
	}
	for _, server := range []string{"irc.fedora.example", "liberachat.example.org", "127.0.0.1"} {
		c := Default()
		c.IRC.Server = server
		c.ACL.AccountIsFASUser = true
		if err := c.Validate(); err != nil && strings.Contains(err.Error(), "account_is_fas_user") {
			t.Errorf("%s: refused: %v", server, err)
		}
		ws := c.Warnings(nil)
		if len(ws) != 1 || ws[0].Key != "acl.account_is_fas_user" || !strings.Contains(ws[0].Problem, "register") {
			t.Errorf("%s: warnings %v, want one naming the risk of acl.account_is_fas_user", server, ws)
		}
		c.ACL.AccountIsFASUser = false
		if ws := c.Warnings(nil); len(ws) != 0 {
			t.Errorf("%s: option off: warnings %v", server, ws)
		}
	}
}

// TestNoTransport: without irc.server and matrix.user_id, check-config
// names both; either one alone is enough.
func TestNoTransport(t *testing.T) {
	c := validConfig()
	c.IRC.Server = ""
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "irc.server") || !strings.Contains(err.Error(), "matrix.user_id") {
		t.Fatalf("Validate: %v, want irc.server and matrix.user_id named", err)
	}
}

// TestUserLimitsMoved: the inbound limits are commands.user_rate and
// commands.user_burst; the irc: keys they used to be are refused with a
// message naming the new ones.
func TestUserLimitsMoved(t *testing.T) {
	clearEnv(t)
	for _, key := range []string{"user_rate: 0.5", "user_burst: 3"} {
		path := writeFile(t, t.TempDir(), "kojibot.yaml", "irc:\n  server: irc.example.org\n  "+key+"\n")
		_, err := Load(path)
		name, _, _ := strings.Cut(key, ":")
		if err == nil || !strings.Contains(err.Error(), "irc."+name) || !strings.Contains(err.Error(), "commands."+name) {
			t.Errorf("irc.%s: Load: %v, want it refused, naming commands.%s", name, err, name)
		}
	}
	path := writeFile(t, t.TempDir(), "kojibot.yaml", "irc: {server: irc.example.org}\ncommands: {user_rate: 0.25, user_burst: 2}\n")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Commands.UserRate != 0.25 || c.Commands.UserBurst != 2 {
		t.Errorf("commands = %+v, want user_rate 0.25 and user_burst 2", c.Commands)
	}
	c.Commands.UserRate, c.Commands.UserBurst = 0, 0
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "commands.user_rate") || !strings.Contains(err.Error(), "commands.user_burst") {
		t.Errorf("Validate: %v, want commands.user_rate and commands.user_burst refused", err)
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

// TestWarningsPublicListen: check-config warns about an http.listen
// address that is not loopback, even with public_url, and not otherwise.
func TestWarningsPublicListen(t *testing.T) {
	for _, tt := range []struct {
		listen string
		warn   bool
	}{
		{"127.0.0.1:9090", false},
		{"[::1]:9090", false},
		{"localhost:9090", false},
		{"", false},
		{"0.0.0.0:9090", true},
		{":9090", true},
		{"192.0.2.10:9090", true},
	} {
		c := validConfig()
		c.HTTP.Listen, c.HTTP.PublicURL = tt.listen, "https://kojibot.example.org"
		var got []*KeyError
		for _, w := range c.Warnings(nil) {
			if w.Key == "http.listen" {
				got = append(got, w)
			}
		}
		switch {
		case tt.warn && (len(got) != 1 || !strings.Contains(got[0].Problem, tt.listen)):
			t.Errorf("listen %q: warnings %v, want one about http.listen naming it", tt.listen, got)
		case !tt.warn && len(got) != 0:
			t.Errorf("listen %q: warnings %v, want none", tt.listen, got)
		}
	}
}

func TestIsLoopbackListen(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090": true, "127.1.2.3:1": true, "[::1]:9090": true, "localhost:9090": true, "LOCALHOST:1": true,
		"0.0.0.0:9090": false, ":9090": false, "[::]:9090": false, "10.0.0.1:80": false, "example.org:80": false,
		"127.0.0.1": false, "": false,
	} {
		if got := IsLoopbackListen(addr); got != want {
			t.Errorf("IsLoopbackListen(%q) = %v, want %v", addr, got, want)
		}
	}
}
