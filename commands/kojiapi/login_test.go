package kojiapi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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

// krbClient is a Client of hub logging in by Kerberos as botUser.
func krbClient(t *testing.T, hub *realkoji.Hub, mod func(*Options)) *Client {
	t.Helper()
	kt, err := hub.Keytab(botUser)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{URL: hub.URL, CAFile: hub.CACert(), Auth: AuthKerberos, Keytab: kt,
		Krb5Conf: hub.KDC.Krb5Conf, Logger: testLogger(t)}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestKerberosLogin: the bot logs in with its keytab (SPNEGO through
// mod_auth_gssapi) and the hub knows it as its Koji user, logged in by
// GSSAPI (authtype 3), with the principal given or the keytab's first.
func TestKerberosLogin(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{})
	for _, principal := range []string{"", realkoji.Principal(botUser)} {
		c := krbClient(t, hub, func(o *Options) { o.Principal = principal })
		u, err := c.Call(context.Background(), "getLoggedInUser")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := u.(map[string]any)
		if m["name"] != botUser || m["authtype"] != int64(3) {
			t.Fatalf("principal %q: logged in as %v (authtype %v), want %s by GSSAPI (3)", principal, m["name"], m["authtype"], botUser)
		}
	}
}

// TestKerberosLoginRefused: a principal the KDC does not know is a
// login error with the short reason, naming no principal, KDC or file.
func TestKerberosLoginRefused(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{})
	c := krbClient(t, hub, func(o *Options) { o.Principal = "nobody@" + "KOJIBOT.TEST" })
	_, err := c.Call(context.Background(), "getLoggedInUser")
	if !errors.Is(err, ErrLogin) {
		t.Fatalf("got %v, want ErrLogin", err)
	}
	for _, s := range []string{"nobody", "KOJIBOT.TEST", ".keytab", "localhost"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("the error %q names %q", err, s)
		}
	}
}

// TestActAsCaller: with ActAsCaller the bot logs in its callers
// (sslLogin with proxyuser, allowed by the hub's ProxyPrincipals and
// ProxyDNs), one session per caller reused across calls; a caller Koji
// does not know is refused with the hub's reason; without ActAsCaller,
// As is the bot itself.
func TestActAsCaller(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{Users: map[string][]string{"alice": nil, "carol": nil}})
	ctx := context.Background()
	for name, c := range map[string]*Client{
		"certificate": certClient(t, hub, func(o *Options) { o.ActAsCaller = true }),
		"kerberos":    krbClient(t, hub, func(o *Options) { o.ActAsCaller = true }),
	} {
		t.Run(name, func(t *testing.T) {
			before := sessionsOf(t, hub, "alice")
			for range 3 {
				v, err := c.As("alice").Call(ctx, "getLoggedInUser")
				if err != nil {
					t.Fatal(err)
				}
				if m, _ := v.(map[string]any); m["name"] != "alice" {
					t.Fatalf("As(alice) is logged in as %v", m["name"])
				}
			}
			if n := sessionsOf(t, hub, "alice") - before; n != 1 {
				t.Fatalf("%d new sessions of alice for 3 calls, want 1", n)
			}
			v, err := c.Call(ctx, "getLoggedInUser")
			if m, _ := v.(map[string]any); err != nil || m["name"] != botUser {
				t.Fatalf("the bot's own call: %v, %v", v, err)
			}
			_, err = c.As("mallory").Call(ctx, "getLoggedInUser")
			if !errors.Is(err, ErrLogin) || !IsFault(err, "AuthError") || !strings.Contains(err.Error(), "Unknown user: mallory") {
				t.Fatalf("a caller without a Koji account: %v", err)
			}
		})
	}
	plain := certClient(t, hub, nil)
	v, err := plain.As("alice").Call(ctx, "getLoggedInUser")
	if m, _ := v.(map[string]any); err != nil || m["name"] != botUser {
		t.Fatalf("As without ActAsCaller: %v, %v; want the bot", v, err)
	}
}

// TestActAsCallerNotAllowed: a bot the hub does not list in ProxyDNs
// cannot log in its callers; the hub's reason is passed on.
func TestActAsCallerNotAllowed(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{Users: map[string][]string{"alice": nil, "otherbot": nil}})
	pem, err := hub.Cert("otherbot")
	if err != nil {
		t.Fatal(err)
	}
	c := certClient(t, hub, func(o *Options) { o.CertFile, o.ActAsCaller = pem, true })
	_, err = c.As("alice").Call(context.Background(), "getLoggedInUser")
	if !errors.Is(err, ErrLogin) || !strings.Contains(err.Error(), "is not authorized to login other users") {
		t.Fatalf("got %v", err)
	}
}

// TestIdleCallerDropped: a caller's session unused for IdleTimeout is
// logged out (closed in the hub's database) when another call comes;
// the bot's own session stays.
func TestIdleCallerDropped(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{Users: map[string][]string{"alice": nil, "carol": nil}})
	c := certClient(t, hub, func(o *Options) { o.ActAsCaller, o.IdleTimeout = true, 300*time.Millisecond })
	ctx := context.Background()
	if _, err := c.As("alice").Call(ctx, "getLoggedInUser"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, "getLoggedInUser"); err != nil {
		t.Fatal(err)
	}
	open := func(name string) int64 {
		return scalar[int64](t, hubDB(t, hub), `SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.name = $1 AND NOT s.closed`, name)
	}
	if open("alice") != 1 {
		t.Fatal("alice has no open session")
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := c.As("carol").Call(ctx, "getLoggedInUser"); err != nil {
		t.Fatal(err)
	}
	c.bg.Wait()
	if n := open("alice"); n != 0 {
		t.Fatalf("alice's idle session is still open (%d)", n)
	}
	if open(botUser) != 1 || open("carol") != 1 {
		t.Fatalf("open sessions: bot %d, carol %d; want 1 each", open(botUser), open("carol"))
	}
	// alice's next call logs her in again.
	v, err := c.As("alice").Call(ctx, "getLoggedInUser")
	if m, _ := v.(map[string]any); err != nil || m["name"] != "alice" {
		t.Fatalf("alice again: %v, %v", v, err)
	}
}
