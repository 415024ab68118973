package acl_test

// The Kerberos tests of the acl package, against a real MIT KDC and Apache
// with mod_auth_gssapi in front of the FASJSON stand-in, as FASJSON is
// deployed (tests/harness/kdc).

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness/fasjsonfake"
	"github.com/fedora-infra/kojibot/tests/harness/kdc"
)

// stack is a realm, FASJSON's stand-in and Apache in front of it.
type stack struct {
	kdc   *kdc.KDC
	httpd *kdc.HTTPD
	dir   string // the bot's keytabs

	mu          sync.Mutex
	remoteUsers []string // what Apache told the backend, per request
}

// startStack starts the KDC with the bot's principals (kojibot, and
// kojibot-short whose tickets last 8 seconds), the FASJSON stand-in, and
// Apache between the two. A missing program is a failure.
func startStack(t *testing.T) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a KDC and Apache (not with -short)")
	}
	s := &stack{dir: t.TempDir()}
	k, err := kdc.StartKDC()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	s.kdc = k
	if err := k.AddPrincipal("kojibot", 0); err != nil {
		t.Fatal(err)
	}
	if err := k.AddPrincipal("kojibot-short", shortLife); err != nil {
		t.Fatal(err)
	}
	fake, err := fasjsonfake.Start("127.0.0.1:0", map[string]fasjsonfake.User{
		"alice": {Groups: []string{"sysadmin-build"}},
		"bob":   {Groups: []string{"packager"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	// The backend records who Apache says authenticated, then hands the
	// request to the stand-in.
	target, _ := url.Parse(fake.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.remoteUsers = append(s.remoteUsers, r.Header.Get(kdc.RemoteUserHeader))
		s.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(backend.Close)
	h, err := kdc.StartHTTPD(k, backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	s.httpd = h
	return s
}

// keytab writes a fresh keytab for name and returns its path.
func (s *stack) keytab(t *testing.T, file, name string) string {
	t.Helper()
	path := filepath.Join(s.dir, file)
	if err := s.kdc.Keytab(path, name); err != nil {
		t.Fatal(err)
	}
	return path
}

// users returns and forgets the REMOTE_USERs Apache passed on.
func (s *stack) users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.remoteUsers
	s.remoteUsers = nil
	return u
}

// checker is an ACL checker with a FASJSON source reached through Apache.
func (s *stack) checker(t *testing.T, auth acl.Authenticator) *acl.Checker {
	t.Helper()
	return s.checkerAt(t, s.httpd.URL, auth)
}

// checkerAt is checker with FASJSON at url.
func (s *stack) checkerAt(t *testing.T, url string, auth acl.Authenticator) *acl.Checker {
	t.Helper()
	c, err := acl.New(config.ACL{
		Source:     "fasjson",
		FASJSONURL: url,
		CacheTTL:   time.Minute,
		Timeout:    5 * time.Second,
		Network:    "irc.libera.chat",
		Commands:   map[string][]string{"capacity": {"sysadmin-build"}},
	}, acl.Options{HTTPClient: &http.Client{}, Authenticator: auth})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKerberos(t *testing.T, opts acl.KerberosOptions) *acl.Kerberos {
	t.Helper()
	k, err := acl.NewKerberos(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}

// get makes one request through Apache with auth and returns the status.
func (s *stack) get(t *testing.T, auth acl.Authenticator) (int, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.httpd.URL+"/v1/groups/sysadmin-build/is-member/alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.Authenticate(req); err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestKerberosThroughApache covers the Kerberos cases against a real
// KDC and Apache with mod_auth_gssapi: Apache refuses a request without a
// ticket; a good keytab gives the member decision; a wrong keytab, a
// missing one and a stopped KDC each fail closed, naming the failure.
func TestKerberosThroughApache(t *testing.T) {
	s := startStack(t)
	stale := s.keytab(t, "stale.keytab", "kojibot") // outdated by the next line
	good := s.keytab(t, "kojibot.keytab", "kojibot")
	ctx := context.Background()
	alice := acl.Caller{FASUser: "alice"}

	t.Run("no ticket is refused by Apache", func(t *testing.T) {
		code, err := s.get(t, acl.NoAuth{})
		if err != nil || code != http.StatusUnauthorized {
			t.Fatalf("without a ticket: status %d, err %v; want 401 from Apache", code, err)
		}
		if u := s.users(); len(u) != 0 {
			t.Fatalf("the backend was reached without a ticket: %q", u)
		}
		d := s.checker(t, acl.NoAuth{}).Authorize(ctx, alice, "capacity", false)
		if d.Allowed || !strings.Contains(d.Reason, "FASJSON unavailable") || !strings.Contains(d.Reason, "401") {
			t.Fatalf("Authorize without a ticket = %+v; want denied, FASJSON unavailable, 401", d)
		}
	})

	t.Run("good ticket gives the member decision", func(t *testing.T) {
		auth := newKerberos(t, acl.KerberosOptions{Keytab: good, Krb5Conf: s.kdc.Krb5Conf})
		c := s.checker(t, auth)
		if d := c.Authorize(ctx, alice, "capacity", false); !d.Allowed {
			t.Fatalf("alice, a member of sysadmin-build: %+v; want allowed", d)
		}
		d := c.Authorize(ctx, acl.Caller{FASUser: "bob"}, "capacity", false)
		if d.Allowed || strings.Contains(d.Reason, "unavailable") {
			t.Fatalf("bob, not a member: %+v; want denied as a non-member", d)
		}
		want := "kojibot@" + kdc.Realm
		users := s.users()
		if len(users) == 0 {
			t.Fatal("no request reached the backend")
		}
		for _, u := range users {
			if u != want {
				t.Fatalf("Apache passed REMOTE_USER %q; want %q", u, want)
			}
		}
	})

	t.Run("explicit principal", func(t *testing.T) {
		auth := newKerberos(t, acl.KerberosOptions{Keytab: good, Principal: "kojibot@" + kdc.Realm, Krb5Conf: s.kdc.Krb5Conf})
		if code, err := s.get(t, auth); err != nil || code != http.StatusOK {
			t.Fatalf("status %d, err %v; want 200\nApache: %s", code, err, s.httpd.ErrorLog())
		}
	})

	// Each failure is denied with "FASJSON unavailable (Kerberos: <short
	// reason>)": the reply names neither the bot's principal, nor the
	// FASJSON service principal, nor the KDC, nor a file; the log does.
	secretNames := []string{"kojibot", "someone-else", kdc.Realm, "HTTP/", "localhost", s.kdc.Addr, s.dir}
	failures := []struct {
		name, keytab, principal string
		url                     string // FASJSON's URL, when not Apache's
		reason                  string
		logged                  []string
	}{
		{"wrong keytab", stale, "", "", "cannot decrypt the KDC's answer with the keytab's key (wrong or outdated key)",
			[]string{"login as kojibot@" + kdc.Realm}},
		{"no keytab", filepath.Join(s.dir, "missing.keytab"), "", "", "the keytab does not exist",
			[]string{filepath.Join(s.dir, "missing.keytab")}},
		{"principal not in keytab", good, "someone-else", "", "the keytab holds no key for the bot's principal",
			[]string{"holds no key for someone-else@" + kdc.Realm}},
		{"unknown service principal", good, "", strings.Replace(s.httpd.URL, "localhost", "127.0.0.1", 1),
			"the service principal is unknown to the KDC", []string{"HTTP/127.0.0.1@" + kdc.Realm}},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			var logged syncBuffer
			auth := newKerberos(t, acl.KerberosOptions{Keytab: f.keytab, Principal: f.principal, Krb5Conf: s.kdc.Krb5Conf,
				Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			c := s.checker(t, auth)
			if f.url != "" {
				c = s.checkerAt(t, f.url, auth)
			}
			d := c.Authorize(ctx, alice, "capacity", false)
			want := "FASJSON unavailable (Kerberos: " + f.reason + "); refusing capacity until group membership can be checked"
			if d.Allowed || d.Reason != want {
				t.Fatalf("Authorize: %+v;\nwant denied with %q", d, want)
			}
			for _, name := range secretNames {
				if strings.Contains(d.Reason, name) {
					t.Errorf("the reason names %q: %s", name, d.Reason)
				}
			}
			for _, l := range f.logged {
				if !strings.Contains(logged.String(), l) {
					t.Errorf("the log does not say %q:\n%s", l, logged.String())
				}
			}
		})
	}

	t.Run("KDC stopped", func(t *testing.T) {
		s.kdc.Stop()
		defer func() {
			if err := s.kdc.Start(); err != nil {
				t.Fatal(err)
			}
		}()
		var logged syncBuffer
		auth := newKerberos(t, acl.KerberosOptions{Keytab: good, Krb5Conf: s.kdc.Krb5Conf,
			Logger: slog.New(slog.NewTextHandler(&logged, nil))})
		_, err := s.get(t, auth)
		if !errors.Is(err, acl.ErrUnavailable) || err.Error() != "FASJSON unavailable (Kerberos: cannot reach a KDC)" {
			t.Fatalf("Authenticate with the KDC stopped: %v", err)
		}
		d := s.checker(t, auth).Authorize(ctx, alice, "capacity", false)
		if d.Allowed || !strings.HasPrefix(d.Reason, "FASJSON unavailable (Kerberos: cannot reach a KDC)") {
			t.Fatalf("Authorize with the KDC stopped: %+v; want denied, saying no KDC could be reached", d)
		}
		for _, name := range secretNames {
			if strings.Contains(d.Reason, name) {
				t.Errorf("the reason names %q: %s", name, d.Reason)
			}
		}
		if !strings.Contains(logged.String(), "login as kojibot@"+kdc.Realm) {
			t.Errorf("the log does not name the principal:\n%s", logged.String())
		}
	})
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// logins counts the authenticator's "logged in" records.
type logins struct {
	slog.Handler
	mu sync.Mutex
	n  int
}

func (l *logins) Enabled(context.Context, slog.Level) bool { return true }

func (l *logins) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "kerberos: logged in" {
		l.mu.Lock()
		l.n++
		l.mu.Unlock()
	}
	return nil
}

func (l *logins) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// shortLife is how long kojibot-short's tickets last.
const shortLife = 8 * time.Second

// TestKerberosRenewal keeps authenticating, every second for 16 s, as a
// principal whose tickets last 8 seconds. Apache allows kdc.ClockSkew
// seconds past a ticket's end, so a request sent with the first ticket
// after 13 s would be refused: every request succeeding, with more than
// one login, shows that the tickets were replaced before they ended.
func TestKerberosRenewal(t *testing.T) {
	s := startStack(t)
	kt := s.keytab(t, "short.keytab", "kojibot-short")
	counter := &logins{Handler: slog.DiscardHandler}
	auth := newKerberos(t, acl.KerberosOptions{Keytab: kt, Krb5Conf: s.kdc.Krb5Conf, Logger: slog.New(counter)})
	const runFor, every = shortLife + kdc.ClockSkew*time.Second + 3*time.Second, time.Second
	start := time.Now()
	requests := 0
	for time.Since(start) < runFor {
		code, err := s.get(t, auth)
		if err != nil || code != http.StatusOK {
			t.Fatalf("after %s: status %d, err %v; want 200\nApache: %s", time.Since(start).Round(time.Second), code, err, s.httpd.ErrorLog())
		}
		requests++
		time.Sleep(every)
	}
	if n := counter.count(); n < 2 {
		t.Fatalf("%d logins in %s with %s tickets; want at least 2", n, runFor, shortLife)
	}
	want := "kojibot-short@" + kdc.Realm
	users := s.users()
	if len(users) < requests {
		t.Fatalf("%d requests reached the backend; want %d", len(users), requests)
	}
	for _, u := range users {
		if u != want {
			t.Fatalf("Apache passed REMOTE_USER %q; want %q", u, want)
		}
	}
}
