package config

import (
	"net"
	"slices"
	"strings"
)

// Warnings returns what check-config should point out without refusing the
// configuration: settings that work but that an operator probably did not
// mean. mutating lists every "command subcommand" of the catalogue that
// changes something: an acl.commands entry for its parent alone does not
// grant it, so such an entry draws a warning naming the child
// left without one.
func (c *Config) Warnings(mutating []string) []*KeyError {
	var out []*KeyError
	rules := map[string]bool{}
	for k := range c.ACL.Commands {
		rules[strings.ToLower(strings.Join(strings.Fields(k), " "))] = true
	}
	children := slices.Clone(mutating)
	slices.Sort(children)
	for _, child := range children {
		parent, _, ok := strings.Cut(child, " ")
		if !ok || !rules[parent] || rules[child] {
			continue
		}
		out = append(out, &KeyError{
			Key: "acl.commands[" + parent + "]",
			Problem: "does not grant \"" + child + "\", which changes things and has no entry of its own, " +
				"so no one may run it; add acl.commands[" + child + "] if someone should",
		})
	}
	if c.SSH.Helper != "" {
		d := defaults()
		for _, k := range []struct{ key, value, def string }{
			{"ssh.service_command", c.SSH.ServiceCommand, d.SSH.ServiceCommand},
			{"ssh.reboot_command", c.SSH.RebootCommand, d.SSH.RebootCommand},
			{"xen.reboot_command", c.Xen.RebootCommand, d.Xen.RebootCommand},
		} {
			if k.value != k.def {
				out = append(out, &KeyError{Key: k.key, Problem: "is not used while ssh.helper is set: the helper runs that step; set ssh.helper to \"\" to use it"})
			}
		}
	}
	if c.ACL.AccountIsFASUser && c.IRC.Server != "" && !PublicIRCNetwork(c.IRC.Server) {
		out = append(out, &KeyError{
			Key: "acl.account_is_fas_user",
			Problem: "is true: a services account on " + c.IRC.Server + " is taken as the FAS user of the same name, " +
				"so anyone who can register an account there named like a FAS user in acl.groups gets that user's rights; " +
				"keep it only if the network's accounts are FAS accounts",
		})
	}
	if c.HTTP.Listen != "" && !IsLoopbackListen(c.HTTP.Listen) {
		out = append(out, &KeyError{
			Key: "http.listen",
			Problem: "\"" + c.HTTP.Listen + "\" is reachable from other machines: /metrics and /healthz are public, " +
				"and anyone who learns a link can read the output it names; prefer 127.0.0.1 behind a proxy",
		})
	}
	return out
}

// publicIRCNetworks are the domains of IRC networks whose services let
// anyone register any free account name.
var publicIRCNetworks = []string{
	"libera.chat", "oftc.net", "freenode.net", "freenode.org", "hackint.org", "rizon.net",
	"efnet.org", "undernet.org", "quakenet.org", "dal.net", "esper.net", "gimp.org",
	"gnome.org", "snoonet.org", "irchighway.net", "geekshed.net", "ircnet.com", "libera.net",
}

// PublicIRCNetwork reports whether server (a host name, as in irc.server)
// belongs to a public IRC network where anyone can register an account.
func PublicIRCNetwork(server string) bool {
	host := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(server)), ".")
	for _, domain := range publicIRCNetworks {
		if host == domain || strings.HasSuffix(host, "."+domain) {
			return true
		}
	}
	return false
}

// IsLoopbackListen reports whether the listen address addr (host:port)
// binds to the loopback interface only. An empty host (every address) is
// not loopback; "localhost" is.
func IsLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
