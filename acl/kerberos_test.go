package acl

import (
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// writeKeytab writes a keytab holding a key for each principal.
func writeKeytab(t *testing.T, dir string, principals ...string) string {
	t.Helper()
	kt := keytab.New()
	for _, p := range principals {
		name, realm, _ := strings.Cut(p, "@")
		if err := kt.AddEntry(name, realm, "not-a-real-password", time.Now(), 1, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
			t.Fatal(err)
		}
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "test.keytab")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNewKerberosNeedsKeytab(t *testing.T) {
	if _, err := NewKerberos(KerberosOptions{}); err == nil {
		t.Fatal("NewKerberos without a keytab succeeded")
	}
}

// TestKerberosFailsClosed covers the failures found before any KDC is
// asked: each wraps ErrUnavailable, says briefly what is wrong without a
// file, principal or KDC name, and logs the detail.
func TestKerberosFailsClosed(t *testing.T) {
	dir := t.TempDir()
	krb5 := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(krb5, []byte("[libdefaults]\n default_realm = EXAMPLE.ORG\n[realms]\n EXAMPLE.ORG = {\n  kdc = 127.0.0.1:1\n }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.keytab")
	if err := os.WriteFile(empty, []byte{0x05, 0x02}, 0o600); err != nil {
		t.Fatal(err)
	}
	good := writeKeytab(t, dir, "kojibot@EXAMPLE.ORG")
	tests := []struct {
		name string
		opts KerberosOptions
		url  string
		want string // the short reason
		log  string // in the log record
	}{
		{"missing keytab", KerberosOptions{Keytab: filepath.Join(dir, "gone.keytab"), Krb5Conf: krb5}, "", "the keytab does not exist", "gone.keytab: does not exist"},
		{"empty keytab", KerberosOptions{Keytab: empty, Krb5Conf: krb5}, "", "the keytab holds no keys", "empty.keytab: holds no keys"},
		{"principal not in keytab", KerberosOptions{Keytab: good, Principal: "other", Krb5Conf: krb5}, "", "the keytab holds no key for the bot's principal", "holds no key for other@EXAMPLE.ORG"},
		{"missing krb5.conf", KerberosOptions{Keytab: good, Krb5Conf: filepath.Join(dir, "no-krb5.conf")}, "", "the krb5 configuration does not exist", "no-krb5.conf: does not exist"},
		{"KDC unreachable", KerberosOptions{Keytab: good, Krb5Conf: krb5}, "", "cannot reach a KDC", "login as kojibot@EXAMPLE.ORG: cannot reach a KDC"},
		{"no host", KerberosOptions{Keytab: good, Krb5Conf: krb5}, "/v1/me/", "the request has no host", "the request has no host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged strings.Builder
			tt.opts.Logger = slog.New(slog.NewTextHandler(&logged, nil))
			k, err := NewKerberos(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			target := tt.url
			if target == "" {
				target = "https://fasjson.example.org/v1/me/"
			}
			req, err := http.NewRequest(http.MethodGet, target, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = k.Authenticate(req)
			if !errors.Is(err, ErrUnavailable) || err.Error() != "FASJSON unavailable (Kerberos: "+tt.want+")" {
				t.Fatalf("Authenticate: %v; want ErrUnavailable saying %q", err, tt.want)
			}
			for _, name := range []string{"kojibot", "other", "EXAMPLE.ORG", "127.0.0.1", "HTTP/", dir} {
				if strings.Contains(err.Error(), name) {
					t.Errorf("the error names %q: %v", name, err)
				}
			}
			if !strings.Contains(logged.String(), tt.log) {
				t.Errorf("the log does not say %q:\n%s", tt.log, logged.String())
			}
			if strings.Contains(err.Error(), "not-a-real-password") {
				t.Fatalf("the error shows the secret: %v", err)
			}
			if h := req.Header.Get("Authorization"); h != "" {
				t.Fatalf("Authorization set after a failure: %q", h)
			}
		})
	}
}

func TestPickPrincipal(t *testing.T) {
	dir := t.TempDir()
	kt, err := keytab.Load(writeKeytab(t, dir, "kojibot/bot.example.org@EXAMPLE.ORG", "other@OTHER.ORG"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		want, defaultRealm, name, realm, err string
	}{
		{"", "IGNORED.ORG", "kojibot/bot.example.org", "EXAMPLE.ORG", ""},
		{"other@OTHER.ORG", "EXAMPLE.ORG", "other", "OTHER.ORG", ""},
		{"kojibot/bot.example.org", "EXAMPLE.ORG", "kojibot/bot.example.org", "EXAMPLE.ORG", ""},
		{"other", "EXAMPLE.ORG", "", "", "holds no key for other@EXAMPLE.ORG"},
		{"kojibot/bot.example.org", "", "kojibot/bot.example.org", "EXAMPLE.ORG", ""},
	}
	for _, tt := range tests {
		name, realm, err := pickPrincipal(tt.want, kt, tt.defaultRealm)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("pickPrincipal(%q) err = %v; want %q", tt.want, err, tt.err)
			}
			continue
		}
		if err != nil || name != tt.name || realm != tt.realm {
			t.Errorf("pickPrincipal(%q, %q) = %q, %q, %v; want %q, %q", tt.want, tt.defaultRealm, name, realm, err, tt.name, tt.realm)
		}
	}
}

func TestTicketLifetime(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	short := &ticket{start: start, end: start.Add(time.Minute)}
	long := &ticket{start: start, end: start.Add(10 * time.Hour)}
	tests := []struct {
		t             *ticket
		after         time.Duration
		fresh, usable bool
	}{
		{short, 0, true, true},
		{short, 39 * time.Second, true, true},
		{short, 40 * time.Second, false, true},
		{short, 49 * time.Second, false, true},
		{short, 50 * time.Second, false, false}, // a sixth of a minute before the end
		{short, 2 * time.Minute, false, false},
		{long, 6 * time.Hour, true, true},
		{long, 7 * time.Hour, false, true},
		{long, 10*time.Hour - 11*time.Second, false, true},
		{long, 10*time.Hour - 10*time.Second, false, false}, // at most 10 s of margin
		{nil, 0, false, false},
	}
	for _, tt := range tests {
		now := start.Add(tt.after)
		if got := tt.t.fresh(now); got != tt.fresh {
			t.Errorf("fresh after %s = %v; want %v", tt.after, got, tt.fresh)
		}
		if got := tt.t.usable(now); got != tt.usable {
			t.Errorf("usable after %s = %v; want %v", tt.after, got, tt.usable)
		}
	}
}

func TestDescribeKerberos(t *testing.T) {
	tests := []struct{ err, want string }{
		{"[Root cause: KDC_Error] KDC_Error: AS Exchange Error: kerberos error response from KDC: KRB Error: (37) KRB_AP_ERR_SKEW Clock Skew too great", "clock skew"},
		{"KRB Error: (24) KDC_ERR_PREAUTH_FAILED Pre-authentication information was invalid", "wrong or outdated key"},
		{"[Root cause: Networking_Error] Networking_Error: AS Exchange Error: failed sending AS_REQ to KDC", "cannot reach a KDC"},
		{"KRB Error: (6) KDC_ERR_C_PRINCIPAL_UNKNOWN Client not found in Kerberos database", "principal is unknown"},
		{"something new", "something new"},
	}
	for _, tt := range tests {
		if got := describeKerberos(errors.New(tt.err)); !strings.Contains(got, tt.want) {
			t.Errorf("describeKerberos(%q) = %q; want it to hold %q", tt.err, got, tt.want)
		}
	}
}
