package kojiapi

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

const twinHost = "ppc3.fedora.redhat.com"

func hostSeed() realkoji.Seed {
	return realkoji.Seed{Hosts: []realkoji.SeedHost{{Name: twinHost, Arches: "ppc ppc64", Capacity: 4}}}
}

// configRows counts the host_config rows of the host, live and revoked:
// one per change editHost made.
func configRows(t *testing.T, hub *realkoji.Hub) int64 {
	t.Helper()
	return scalar[int64](t, hubDB(t, hub), `SELECT count(*) FROM host_config c JOIN host h ON h.id = c.host_id WHERE h.name = $1`, twinHost)
}

// sessionsOf counts the sessions the hub opened for Koji user name.
func sessionsOf(t *testing.T, hub *realkoji.Hub, name string) int64 {
	t.Helper()
	return scalar[int64](t, hubDB(t, hub), `SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.name = $1`, name)
}

// capacityIs is a Check that the host's capacity is want.
func capacityIs(c *Client, want float64) Check {
	return func(ctx context.Context) (bool, error) {
		v, err := c.Call(ctx, "getHost", twinHost)
		if err != nil {
			return false, err
		}
		m, _ := v.(map[string]any)
		return m["capacity"] == want, nil
	}
}

// editCapacity is editHost(capacity=n) as CallWrite sends it.
func editCapacity(ctx context.Context, c *Client, check Check, n float64) (any, error) {
	return c.CallWrite(ctx, check, "editHost", twinHost, Kwargs{"capacity": n})
}

// TestSessionReused: calls share one session (no login per call).
func TestSessionReused(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{})
	c := certClient(t, hub, nil)
	for range 5 {
		if _, err := c.Call(context.Background(), "getLoggedInUser"); err != nil {
			t.Fatal(err)
		}
	}
	if n := sessionsOf(t, hub, botUser); n != 1 {
		t.Fatalf("%d sessions for 5 calls, want 1", n)
	}
}

// TestSessionLost: the hub expires the session (as SessionRenewalTimeout
// does) or forgets it (closed): the client logs in again once, and both a
// read and a write go through, the write exactly once.
func TestSessionLost(t *testing.T) {
	for _, tc := range []struct{ how, auth string }{{"expired", AuthCertificate}, {"closed", AuthCertificate}, {"expired", AuthKerberos}} {
		how := tc.how
		t.Run(how+" "+tc.auth, func(t *testing.T) {
			hub := seededHub(t, hostSeed(), "host")
			c := certClient(t, hub, nil)
			if tc.auth == AuthKerberos {
				c = krbClient(t, hub, nil)
			}
			ctx := context.Background()
			db := hubDB(t, hub)
			lose := func() {
				t.Helper()
				if _, err := db.Exec(ctx, "UPDATE sessions SET "+how+" = true"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Call(ctx, "getLoggedInUser"); err != nil {
				t.Fatal(err)
			}
			lose()
			v, err := c.Call(ctx, "getLoggedInUser")
			if err != nil {
				t.Fatalf("read after the session was %s: %v", how, err)
			}
			if m, _ := v.(map[string]any); m["name"] != botUser {
				t.Fatalf("getLoggedInUser = %v", v)
			}
			if n := sessionsOf(t, hub, botUser); n != 2 {
				t.Fatalf("%d sessions, want 2 (one login again)", n)
			}
			before := configRows(t, hub)
			lose()
			if _, err := editCapacity(ctx, c, nil, 2); err != nil {
				t.Fatalf("write after the session was %s: %v", how, err)
			}
			if got := configRows(t, hub) - before; got != 1 {
				t.Fatalf("the write made %d changes, want 1", got)
			}
			// A check that finds the effect there stops the resend.
			before = configRows(t, hub)
			lose()
			checked := false
			v, err = editCapacity(ctx, c, func(ctx context.Context) (bool, error) { checked = true; return true, nil }, 3)
			if err != nil || v != nil || !checked {
				t.Fatalf("got %v, %v (checked %v); want nil, nil after the check", v, err, checked)
			}
			if got := configRows(t, hub) - before; got != 0 {
				t.Fatalf("the write made %d changes, want none", got)
			}
		})
	}
}

// TestSessionLostTwice: a session lost again right after the new login
// is an error, not a loop.
func TestSessionLostTwice(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{})
	c := certClient(t, hub, nil)
	ctx := context.Background()
	if _, err := c.Call(ctx, "getLoggedInUser"); err != nil {
		t.Fatal(err)
	}
	// Every session the hub opens is expired at once.
	db := hubDB(t, hub)
	if _, err := db.Exec(ctx, `CREATE FUNCTION expire_session() RETURNS trigger LANGUAGE plpgsql AS
		'BEGIN NEW.expired := true; RETURN NEW; END';
		CREATE TRIGGER expire_session BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION expire_session();
		UPDATE sessions SET expired = true`); err != nil {
		t.Fatal(err)
	}
	_, err := c.Call(ctx, "getLoggedInUser")
	if !IsFault(err, "AuthExpired") {
		t.Fatalf("got %v, want the AuthExpired fault", err)
	}
	if n := sessionsOf(t, hub, botUser); n != 2 {
		t.Fatalf("%d sessions, want 2 (one login again, no more)", n)
	}
}

// TestLostAnswer: the answer is cut short after the hub ran the call. A
// read is asked again; a write is never sent twice blindly: without a
// check the caller learns the outcome is unknown; with one, the check
// decides. history counts the changes.
func TestLostAnswer(t *testing.T) {
	hub := seededHub(t, hostSeed(), "host")
	proxy, url := newProxy(t, hub.URL)
	c := certClient(t, hub, func(o *Options) { o.URL = url })
	ctx := context.Background()
	if _, err := c.Call(ctx, "getLoggedInUser"); err != nil {
		t.Fatal(err)
	}

	proxy.cutNext.Store(1)
	v, err := c.Call(ctx, "getHost", twinHost)
	if err != nil || proxy.cuts.Load() != 1 {
		t.Fatalf("read with its answer cut: %v, %v (%d cut)", v, err, proxy.cuts.Load())
	}

	before := configRows(t, hub)
	proxy.cutNext.Store(1)
	_, err = editCapacity(ctx, c, nil, 2)
	if !errors.Is(err, ErrOutcomeUnknown) || proxy.cuts.Load() != 2 {
		t.Fatalf("write without a check, answer cut: %v (%d cut); want ErrOutcomeUnknown", err, proxy.cuts.Load())
	}
	if got := configRows(t, hub) - before; got != 1 {
		t.Fatalf("the write made %d changes, want 1", got)
	}

	before = configRows(t, hub)
	proxy.cutNext.Store(1)
	v, err = editCapacity(ctx, c, capacityIs(c, 3), 3)
	if err != nil || v != nil {
		t.Fatalf("write with a check, answer cut: %v, %v; want nil, nil", v, err)
	}
	if got := configRows(t, hub) - before; got != 1 {
		t.Fatalf("the write made %d changes, want 1", got)
	}

	// A check that finds the effect missing sends the write again, once
	// (editHost with the same capacity again changes nothing).
	before = configRows(t, hub)
	conns := proxy.conns.Load()
	proxy.cutNext.Store(1)
	v, err = editCapacity(ctx, c, func(context.Context) (bool, error) { return false, nil }, 5)
	if err != nil || v != false {
		t.Fatalf("write resent after the check: %v, %v; want editHost's false (nothing left to change)", v, err)
	}
	if got := proxy.conns.Load() - conns; got != 2 {
		t.Fatalf("the write was sent %d times, want 2", got)
	}
	if got := configRows(t, hub) - before; got != 1 {
		t.Fatalf("the write made %d changes, want 1", got)
	}

	// Answers cut twice: the read gives up with a clear error.
	proxy.cutNext.Store(2)
	if _, err := c.Call(ctx, "getHost", twinHost); !errors.Is(err, ErrNotAnswering) {
		t.Fatalf("read cut twice: %v, want ErrNotAnswering", err)
	}
}

// TestApacheRestarted: the hub's Apache restarting between calls costs
// nothing: the session lives in the hub's database.
func TestApacheRestarted(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{})
	c := certClient(t, hub, nil)
	ctx := context.Background()
	if _, err := c.Call(ctx, "getLoggedInUser"); err != nil {
		t.Fatal(err)
	}
	if err := hub.RestartApache(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, "getLoggedInUser"); err != nil {
		t.Fatal(err)
	}
	if n := sessionsOf(t, hub, botUser); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
}

// noAddress fails the test if err's text names host or port.
func noAddress(t *testing.T, err error, hubURL string) {
	t.Helper()
	hostPort := strings.SplitN(strings.TrimPrefix(hubURL, "https://"), "/", 2)[0]
	_, port, _ := net.SplitHostPort(hostPort)
	for _, s := range []string{port, "localhost", "127.0.0.1", "kojihub", "https"} {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("the error %q names %q", err, s)
		}
	}
}

// TestHubDown: a hub that refuses connections, or accepts and never
// answers, gives "the Koji hub is not answering", naming no address, by
// the deadline.
func TestHubDown(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	down := "https://localhost:" + port + "/kojihub"
	ctx := context.Background()
	for _, auth := range []string{"", AuthCertificate} {
		c := certClient(t, hub, func(o *Options) { o.URL, o.Auth = down, auth })
		_, err := c.Call(ctx, "getAPIVersion")
		if !errors.Is(err, ErrNotAnswering) || err.Error() != "the Koji hub is not answering" {
			t.Fatalf("auth %q: got %v, want ErrNotAnswering", auth, err)
		}
		noAddress(t, err, down)
		_, err = editCapacity(ctx, c, nil, 2)
		if !errors.Is(err, ErrNotAnswering) {
			t.Fatalf("auth %q: write got %v, want ErrNotAnswering", auth, err)
		}
		noAddress(t, err, down)
	}

	proxy, url := newProxy(t, hub.URL)
	proxy.hang.Store(true)
	c := certClient(t, hub, func(o *Options) { o.URL, o.Timeout = url, 500*time.Millisecond })
	start := time.Now()
	_, err = c.Call(ctx, "getAPIVersion")
	if !errors.Is(err, ErrNotAnswering) || time.Since(start) > 5*time.Second {
		t.Fatalf("a hanging hub: %v after %v, want ErrNotAnswering after the 500ms deadline", err, time.Since(start))
	}
	noAddress(t, err, url)

	// An untrusted certificate: said so, without the address.
	c = certClient(t, hub, func(o *Options) { o.CAFile = "" })
	_, err = c.Call(ctx, "getAPIVersion")
	if err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("an untrusted hub: %v", err)
	}
	noAddress(t, err, hub.URL)
}
