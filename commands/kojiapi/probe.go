package kojiapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/fedora-infra/kojibot/config"
)

// OptionsFrom returns the Options of the koji.hub section of cfg (with
// acl.krb5_conf for Kerberos).
func OptionsFrom(cfg *config.Config, log *slog.Logger) Options {
	h := cfg.Koji.Hub
	return Options{
		URL: h.URL, CAFile: h.CAFile, Auth: h.Auth,
		Principal: h.Principal, Keytab: h.Keytab, Krb5Conf: cfg.ACL.Krb5Conf,
		CertFile: h.CertFile, ActAsCaller: h.ActAsCaller, Logger: log,
	}
}

// ProbeNeeds says which of the hub's permissions the configuration needs:
// host for capacity, enable and disable; tag for override.
type ProbeNeeds struct {
	Host bool
	Tag  bool
}

// Probe logs in to the hub and writes to w what check-config --probe
// reports: the hub's Koji version, the Koji user the bot is logged in
// as, whether that user has the host and tag permissions (or admin), and
// with ActAsCaller whether the hub lets the bot log in its callers. It
// returns how many needed things are missing; an error means the hub
// could not be asked at all.
func (c *Client) Probe(ctx context.Context, needs ProbeNeeds, w io.Writer) (missing int, err error) {
	v, err := c.Call(ctx, "getLoggedInUser")
	if err != nil {
		return 0, err
	}
	user, _ := v.(map[string]any)
	name, _ := user["name"].(string)
	if name == "" {
		return 0, errors.New("the Koji hub says the bot is not logged in")
	}
	version := c.HubVersion()
	if version == "" {
		if v, err := c.Call(ctx, "getKojiVersion"); err == nil {
			version, _ = v.(string)
		}
	}
	if version == "" {
		version = "(unknown version)"
	}
	fmt.Fprintf(w, "koji hub: Koji %s, logged in as %s (%s)\n", version, name, c.opts.Auth)
	v, err = c.Call(ctx, "getPerms")
	if err != nil {
		return 0, err
	}
	perms := map[string]bool{}
	list, _ := v.([]any)
	for _, p := range list {
		if s, ok := p.(string); ok {
			perms[s] = true
		}
	}
	check := func(ok, needed bool, what, fix string) {
		switch {
		case ok:
			fmt.Fprintf(w, "ok       %s\n", what)
		case needed:
			missing++
			fmt.Fprintf(w, "MISSING  %s: %s\n", what, fix)
		default:
			fmt.Fprintf(w, "absent   %s (no configured command needs it)\n", what)
		}
	}
	admin := perms["admin"]
	check(perms["host"] || admin, needs.Host, "the host permission (capacity, enable, disable)", "koji grant-permission host "+name)
	check(perms["tag"] || admin, needs.Tag, "the tag permission (override)", "koji grant-permission tag "+name)
	if c.opts.ActAsCaller {
		// Proxying to itself proves the hub lets the bot log in others
		// (ProxyPrincipals, ProxyDNs) without needing anyone's account.
		v, err := c.As(name).Call(ctx, "getLoggedInUser")
		m, _ := v.(map[string]any)
		switch {
		case err == nil && m["name"] == name:
			check(true, true, "proxy login (koji.hub.act_as_caller)", "")
		case errors.Is(err, ErrNotAnswering):
			return missing, err
		default:
			reason := "the hub's answer was not the user"
			if f := (*Fault)(nil); errors.As(err, &f) {
				reason = f.Message()
			} else if err != nil {
				reason = err.Error()
			}
			check(false, true, "proxy login (koji.hub.act_as_caller)",
				fmt.Sprintf("%s; list the bot in the hub's ProxyPrincipals (Kerberos) or ProxyDNs (certificate)", reason))
		}
	}
	return missing, nil
}
