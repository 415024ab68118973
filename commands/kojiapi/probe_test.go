package kojiapi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

// TestProbe: what check-config --probe reports of the real hub, and how
// many needed things are missing.
func TestProbe(t *testing.T) {
	tests := []struct {
		name        string
		perms       []string
		user        string // the certificate's user; "" is botUser
		actAsCaller bool
		needs       ProbeNeeds
		missing     int
		says        []string
	}{
		{"host only, tag needed", []string{"host"}, "", false, ProbeNeeds{Host: true, Tag: true}, 1,
			[]string{"koji hub: Koji 1.35.3, logged in as kojibot (certificate)", "ok       the host permission", "MISSING  the tag permission (override): koji grant-permission tag kojibot"}},
		{"nothing, nothing needed", nil, "", false, ProbeNeeds{}, 0,
			[]string{"absent   the host permission", "absent   the tag permission"}},
		{"admin", []string{"admin"}, "", true, ProbeNeeds{Host: true, Tag: true}, 0,
			[]string{"ok       the host permission", "ok       the tag permission", "ok       proxy login"}},
		{"proxy not allowed", []string{"host", "tag"}, "otherbot", true, ProbeNeeds{Host: true, Tag: true}, 1,
			[]string{"logged in as otherbot", "MISSING  proxy login (koji.hub.act_as_caller): ", "is not authorized to login other users", "ProxyDNs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seed := realkoji.Seed{}
			if tt.user != "" {
				seed.Users = map[string][]string{tt.user: tt.perms}
			}
			hub := seededHub(t, seed, tt.perms...)
			c := certClient(t, hub, func(o *Options) {
				o.ActAsCaller = tt.actAsCaller
				if tt.user != "" {
					pem, err := hub.Cert(tt.user)
					if err != nil {
						t.Fatal(err)
					}
					o.CertFile = pem
				}
			})
			var out strings.Builder
			missing, err := c.Probe(context.Background(), tt.needs, &out)
			if err != nil {
				t.Fatal(err)
			}
			if missing != tt.missing {
				t.Errorf("%d missing, want %d:\n%s", missing, tt.missing, &out)
			}
			for _, s := range tt.says {
				if !strings.Contains(out.String(), s) {
					t.Errorf("the report does not say %q:\n%s", s, &out)
				}
			}
		})
	}
}

// TestProbeKerberos: the probe over a Kerberos login, with proxy login.
func TestProbeKerberos(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{}, "host")
	c := krbClient(t, hub, func(o *Options) { o.ActAsCaller = true })
	var out strings.Builder
	missing, err := c.Probe(context.Background(), ProbeNeeds{Host: true}, &out)
	if err != nil || missing != 0 {
		t.Fatalf("%d missing, %v:\n%s", missing, err, &out)
	}
	for _, s := range []string{"logged in as kojibot (kerberos)", "ok       proxy login"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("the report does not say %q:\n%s", s, &out)
		}
	}
}

// TestProbeHubDown: a hub that does not answer is an error.
func TestProbeHubDown(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{})
	proxy, url := newProxy(t, hub.URL)
	proxy.hang.Store(true)
	c := certClient(t, hub, func(o *Options) { o.URL, o.Timeout = url, 300*time.Millisecond })
	if _, err := c.Probe(context.Background(), ProbeNeeds{}, &strings.Builder{}); !errors.Is(err, ErrNotAnswering) {
		t.Fatalf("got %v, want ErrNotAnswering", err)
	}
}

// TestOptionsFrom: the koji.hub keys, and acl.krb5_conf, make the
// client's options.
func TestOptionsFrom(t *testing.T) {
	cfg := config.Default()
	cfg.Koji.Hub = config.KojiHub{URL: "https://koji.example.org/kojihub", CAFile: "/ca", Auth: "kerberos",
		Principal: "kojibot@EXAMPLE.ORG", Keytab: "/kt", CertFile: "/pem", ActAsCaller: true}
	cfg.ACL.Krb5Conf = "/krb5.conf"
	o := OptionsFrom(cfg, nil)
	want := Options{URL: "https://koji.example.org/kojihub", CAFile: "/ca", Auth: "kerberos", Principal: "kojibot@EXAMPLE.ORG",
		Keytab: "/kt", Krb5Conf: "/krb5.conf", CertFile: "/pem", ActAsCaller: true}
	if o != want {
		t.Fatalf("got %+v, want %+v", o, want)
	}
}
