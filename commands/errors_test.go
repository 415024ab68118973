package commands

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/kojiapi"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/config"
)

// What a reply in a channel must never carry.
var (
	leakPathRE     = regexp.MustCompile(`(^|[\s'"(=:])~?/[A-Za-z0-9._-]+/`)
	leakIPRE       = regexp.MustCompile(`\b[0-9]{1,3}(\.[0-9]{1,3}){3}\b|\[[0-9a-fA-F:]*:[0-9a-fA-F:]*\]|::1\b`)
	leakHostPortRE = regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9.-]*:[0-9]{2,5}\b`)
)

// checkNoLeak fails when reply names a path, an address or an ssh-keyscan
// recipe, or any of the secrets.
func checkNoLeak(t *testing.T, what, reply string, secrets ...string) {
	t.Helper()
	for _, re := range []*regexp.Regexp{leakPathRE, leakIPRE, leakHostPortRE} {
		if m := re.FindString(reply); m != "" {
			t.Errorf("%s: reply %q carries %q", what, reply, m)
		}
	}
	for _, s := range append([]string{"ssh-keyscan", "ssh-keygen", "known_hosts", "://", "SHA256:"}, secrets...) {
		if strings.Contains(reply, s) {
			t.Errorf("%s: reply %q carries %q", what, reply, s)
		}
	}
}

// deadDSN points at a port nothing listens on.
func deadDSN(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "postgres://kojibot:s3cretpw@" + addr + "/koji?connect_timeout=2&sslmode=disable"
}

// TestUserMessageNoLeak runs the known kinds of failure through
// userMessage: each reply names the failure, and none carries a file path,
// an IP address, a host:port, a URL or an ssh-keyscan recipe; the log has
// the whole error.
func TestUserMessageNoLeak(t *testing.T) {
	d, _ := newTestDispatcher(t)
	s, _ := d.catalogue.Lookup([]string{"disk"})
	if s == nil {
		t.Fatal("no disk command")
	}

	// A real database that is down: pgx's errors carry host:port.
	ctx := context.Background()
	db, err := kojidb.Open(ctx, deadDSN(t), "kojibot", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, dbErr := db.Hosts(ctx)
	if dbErr == nil {
		t.Fatal("Hosts on a dead database succeeded")
	}
	if !strings.Contains(dbErr.Error(), "127.0.0.1") {
		t.Logf("note: the database error has no address to hide: %v", dbErr)
	}
	// A real os error: it names its path.
	_, pathErr := os.ReadFile("/etc/kojibot/nonexistent/outage.tmpl")
	// A real dial error: it names its address.
	_, dialErr := net.DialTimeout("tcp", "127.0.0.1:1", time.Second)
	if dialErr == nil {
		t.Fatal("127.0.0.1:1 answered")
	}
	label := "xenbuilder4 (xenbuilder4.example.org:2222)"
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"unknown host key", fmt.Errorf("fleet: %s: %w: it presents ssh-ed25519 SHA256:q2Tz, which is not in /etc/kojibot/known_hosts; add it with `ssh-keyscan -p 2222 xenbuilder4.example.org >> /etc/kojibot/known_hosts` after checking its fingerprint with the host's administrators", label, fleet.ErrUnknownHostKey),
			[]string{"xenbuilder4: unknown SSH host key (see the log)"}},
		{"host key changed", fmt.Errorf("fleet: %s: %w: it now presents ssh-ed25519 SHA256:x but known_hosts has ssh-rsa SHA256:y (/etc/kojibot/known_hosts:3); fix /etc/kojibot/known_hosts (ssh-keygen -R [xenbuilder4.example.org]:2222 -f /etc/kojibot/known_hosts)", label, fleet.ErrHostKeyChanged),
			[]string{"xenbuilder4: SSH host key changed"}},
		{"unreachable", fmt.Errorf("stopping kojid: %w", fmt.Errorf("fleet: %s: %w: connect: %w", label, fleet.ErrUnreachable, dialErr)),
			[]string{"stopping kojid: xenbuilder4: unreachable"}},
		{"auth", fmt.Errorf("fleet: %s: %w for user kojibot: ssh: unable to authenticate, attempted methods [none publickey]", label, fleet.ErrAuth),
			[]string{"xenbuilder4: SSH login refused"}},
		{"fan-out", errors.Join(
			fmt.Errorf("fleet: xenbuilder1 (192.0.2.1:22): %w: connect: %w", fleet.ErrUnreachable, dialErr),
			fmt.Errorf("fleet: xenbuilder2 ([2001:db8::2]:22): %w: it presents ssh-ed25519 SHA256:z, which is not in /etc/kojibot/known_hosts", fleet.ErrUnknownHostKey)),
			[]string{"xenbuilder1: unreachable", "xenbuilder2: unknown SSH host key"}},
		{"database down", dbErr, []string{"Koji database", "unavailable"}},
		{"database down, wrapped", fmt.Errorf("reading the hosts: %w", dbErr), []string{"Koji database", "unavailable"}},
		{"local file", fmt.Errorf("reading the template: %w", pathErr), []string{"disk failed: reading the template: open <path>: no such file"}},
		{"dial", fmt.Errorf("asking the hub: %w", dialErr), []string{"disk failed: asking the hub:", "connection refused"}},
		{"url", &url.Error{Op: "Get", URL: "https://fasjson.example.org:8443/v1/users/alice/", Err: dialErr}, []string{"disk failed:"}},
		{"dsn in text", errors.New("connecting to postgres://kojibot@db3.example.org:5432/koji failed"), []string{"disk failed: connecting to"}},
		{"host:port in text", errors.New("koji on koji-admin: hub at koji.example.org:443 refused"), []string{"hub at", "refused"}},
		{"ipv6", errors.New("dial tcp [::1]:5432: connection refused; also fe80::1 and 2001:db8:0:0:0:0:0:7"), []string{"connection refused"}},
		{"path error", &fs.PathError{Op: "open", Path: "/var/lib/kojibot/state.db", Err: fs.ErrPermission}, []string{"permission denied"}},
		{"home path", errors.New("ssh-agent: key ~/.ssh/id_ed25519 refused"), []string{"refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &logText{}
			c := &Call{Parsed: &Parsed{Spec: s}, Log: slog.New(log)}
			got := d.userMessage(c, tt.err)
			t.Logf("reply: %s", got)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("reply %q lacks %q", got, w)
				}
			}
			checkNoLeak(t, tt.name, got, "s3cretpw", "SHA256")
			// The detail is in the log.
			if !strings.Contains(log.String(), tt.err.Error()) {
				t.Errorf("log lacks the error %q:\n%s", tt.err, log.String())
			}
		})
	}

	// remoteMessage, which the callers put after a host's name, names the
	// kind only.
	for _, tt := range tests[:5] {
		got := remoteMessage(tt.err)
		checkNoLeak(t, "remoteMessage "+tt.name, got, "s3cretpw")
		if strings.Contains(got, "xenbuilder4") {
			t.Errorf("remoteMessage(%s) = %q names the host again", tt.name, got)
		}
	}
	for _, tt := range tests[5:] {
		checkNoLeak(t, "remoteMessage "+tt.name, remoteMessage(tt.err), "s3cretpw")
	}
}

// logText is a slog.Handler that keeps each record's message and
// attribute values as they are, unquoted.
type logText struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logText) Enabled(context.Context, slog.Level) bool { return true }
func (l *logText) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logText) WithGroup(string) slog.Handler            { return l }
func (l *logText) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		l.b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.b.WriteString("\n")
	return nil
}

func (l *logText) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDeniedNoLeak: a refusal because FASJSON cannot be reached says so,
// without FASJSON's address.
func TestDeniedNoLeak(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := config.Default().ACL
	cfg.Source = "fasjson"
	cfg.FASJSONURL = "http://" + addr
	cfg.Timeout = 2 * time.Second
	cfg.Accounts = map[string]string{"alice": "alice"}
	cfg.Commands = map[string][]string{"capacity": {"sysadmin-build"}}
	checker, err := acl.New(cfg, acl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := New(Deps{DB: &fakeDB{hosts: testHosts(time.Now())}, ACL: checker})
	got := run(d, "alice", "capacity ppc3 2")
	if !strings.HasPrefix(got, "denied:") || !strings.Contains(got, "FASJSON") {
		t.Fatalf("reply %q, want denied: naming FASJSON", got)
	}
	t.Logf("reply: %s", got)
	checkNoLeak(t, "FASJSON down", got)
}

// TestHubOfflineSaysNothingChanged: the hub without its database answers
// every call with ServerOffline; the caller is told the hub is offline and
// that nothing changed, not that Koji "refused" the command.
func TestHubOfflineSaysNothingChanged(t *testing.T) {
	fault := &kojiapi.Fault{Code: kojiapi.FaultServerOffline, String: "database outage"}
	for _, err := range []error{
		fault,
		&kojiapi.RefusedError{Op: "listHosts", Fault: fault},
		fmt.Errorf("kojihub: editHost: %w", &kojiapi.RefusedError{Op: "editHost ppc1", Fault: &kojiapi.Fault{Code: kojiapi.FaultServerOffline, String: "koji.ServerOffline: database outage"}}),
	} {
		got, ok := systemMessage(err)
		want := "the Koji hub is offline (Koji: database outage); nothing was changed, try again later"
		if !ok || got != want {
			t.Errorf("systemMessage(%v) = %q, %v; want %q", err, got, ok, want)
		}
	}
}
