package realkoji

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
)

// AllowProxy lets the Kerberos principals (without realm, e.g. "kojibot")
// and the certificate subjects of users (CN=name, e.g. "kojibot") log in
// other users (sslLogin with proxyuser): it writes the hub's
// ProxyPrincipals and ProxyDNs into hub.conf.d and restarts Apache so
// that every hub process reads them, then waits until the hub answers.
// A later call replaces the lists; none clears them.
func (h *Hub) AllowProxy(ctx context.Context, principals, certUsers []string) error {
	ps := make([]string, len(principals))
	for i, p := range principals {
		ps[i] = Principal(p)
	}
	dns := make([]string, len(certUsers))
	for i, u := range certUsers {
		// mod_ssl's SSL_CLIENT_S_DN (RFC 2253 order) of the certificates
		// pki.issue makes.
		dns[i] = "CN=" + u + ",O=kojibot tests"
	}
	conf := fmt.Sprintf("[hub]\nProxyPrincipals = %s\nProxyDNs = %s\n", strings.Join(ps, ","), strings.Join(dns, "|"))
	if err := os.WriteFile(filepath.Join(h.Dir, "etc", "hub.conf.d", "proxy.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	return h.RestartApache(ctx)
}

// RestartApache restarts the hub's Apache in place (SIGHUP: its children
// are killed at once, the configuration is read again and new children
// load the hub afresh), and returns once the hub answers again.
func (h *Hub) RestartApache(ctx context.Context) error {
	if h.proc == nil {
		return fmt.Errorf("realkoji: apache is not running")
	}
	if err := h.proc.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("realkoji: restart apache: %w", err)
	}
	anon := h.Anonymous()
	var last error
	up := harness.WaitFor(ctx, 30*time.Second, func() bool {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var v int64
		v, last = anon.Int(cctx, "getAPIVersion")
		return last == nil && v == 1
	})
	if !up {
		return fmt.Errorf("realkoji: the hub does not answer after a restart (%v): %s", last, h.Logs())
	}
	return nil
}
