package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hubFiles writes a keytab (its header only), a certificate file and a
// CA bundle, for the koji.hub keys to name.
func hubFiles(t *testing.T) (keytab, cert, ca string) {
	t.Helper()
	dir := t.TempDir()
	keytab, cert, ca = filepath.Join(dir, "koji.keytab"), filepath.Join(dir, "koji.pem"), filepath.Join(dir, "ca.pem")
	for path, data := range map[string][]byte{keytab: {0x05, 0x02}, cert: []byte("PEM"), ca: []byte("PEM")} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return keytab, cert, ca
}

// TestValidateKojiHubValid: a hub with Kerberos, or with a certificate,
// and act_as_caller, passes; the default (no hub) too.
func TestValidateKojiHubValid(t *testing.T) {
	keytab, cert, ca := hubFiles(t)
	for name, set := range map[string]func(*KojiHub){
		"no hub": func(*KojiHub) {},
		"kerberos": func(h *KojiHub) {
			*h = KojiHub{URL: "https://koji.example.org/kojihub", Auth: "kerberos", Keytab: keytab, Principal: "kojibot/bot.example.org@EXAMPLE.ORG", CAFile: ca, ActAsCaller: true}
		},
		"certificate": func(h *KojiHub) {
			*h = KojiHub{URL: "https://koji.example.org/kojihub", Auth: "certificate", CertFile: cert}
		},
	} {
		c := validConfig()
		set(&c.Koji.Hub)
		c.Koji.WebURL = "https://koji.example.org/koji"
		if err := c.ValidateWith(knownCommands); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestValidateKojiHub: check-config rejects a hub URL without
// credentials, act_as_caller without a hub URL, certificate auth without
// a certificate, and files the bot cannot read.
func TestValidateKojiHub(t *testing.T) {
	keytab, cert, _ := hubFiles(t)
	hub := func(h KojiHub) func(*Config) {
		return func(c *Config) {
			if h.URL == "-" {
				h.URL = ""
			} else if h.URL == "" {
				h.URL = "https://koji.example.org/kojihub"
			}
			if h.Auth == "" {
				h.Auth = "kerberos"
			}
			c.Koji.Hub = h
		}
	}
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name   string
		break_ func(*Config)
		key    string
		says   []string
	}{
		{"url without credentials", hub(KojiHub{}), "koji.hub.keytab", []string{"empty", "koji.hub.url", "keytab"}},
		{"act_as_caller without url", hub(KojiHub{URL: "-", ActAsCaller: true}), "koji.hub.act_as_caller", []string{"koji.hub.url"}},
		{"certificate without cert_file", hub(KojiHub{Auth: "certificate"}), "koji.hub.cert_file", []string{"empty", "PEM"}},
		{"unknown auth", hub(KojiHub{Auth: "password", Keytab: keytab}), "koji.hub.auth", []string{`"password"`, "kerberos", "certificate"}},
		{"unknown auth without url", hub(KojiHub{URL: "-", Auth: "ssl"}), "koji.hub.auth", []string{`"ssl"`}},
		{"url not a URL", hub(KojiHub{URL: "koji.example.org", Keytab: keytab}), "koji.hub.url", []string{`"koji.example.org"`, "http(s) URL"}},
		{"keytab missing", hub(KojiHub{Keytab: missing}), "koji.hub.keytab", []string{"does not exist"}},
		{"keytab not a keytab", hub(KojiHub{Keytab: cert}), "koji.hub.keytab", []string{"not a keytab"}},
		{"principal", hub(KojiHub{Keytab: keytab, Principal: "a@b@c"}), "koji.hub.principal", []string{`"a@b@c"`}},
		{"cert_file missing", hub(KojiHub{Auth: "certificate", CertFile: missing}), "koji.hub.cert_file", []string{"does not exist"}},
		{"ca_file missing", hub(KojiHub{Keytab: keytab, CAFile: missing}), "koji.hub.ca_file", []string{"does not exist"}},
		{"weburl", func(c *Config) { c.Koji.WebURL = "koji.example.org/koji" }, "koji.weburl", []string{`"koji.example.org/koji"`, "http(s) URL"}},
		{"kerberos without krb5.conf", func(c *Config) { hub(KojiHub{Keytab: keytab})(c); c.ACL.Krb5Conf = "" }, "acl.krb5_conf", []string{"empty", "koji.hub.auth"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.break_(c)
			kes := keyErrors(t, c.ValidateWith(knownCommands))
			if len(kes) != 1 {
				t.Fatalf("want exactly one problem, got %d: %v", len(kes), kes)
			}
			if kes[0].Key != tt.key {
				t.Errorf("named %q, want %q (%v)", kes[0].Key, tt.key, kes[0])
			}
			for _, s := range tt.says {
				if !strings.Contains(kes[0].Problem, s) {
					t.Errorf("%q does not say %q", kes[0].Error(), s)
				}
			}
		})
	}
}

// TestKojiHubCredentials: koji.hub.keytab and koji.hub.cert_file may be
// systemd credential names, as acl.keytab.
func TestKojiHubCredentials(t *testing.T) {
	c := Default()
	c.Koji.Hub.Keytab, c.Koji.Hub.CertFile = "koji.keytab", "koji.pem"
	env := func(k string) (string, bool) {
		if k == CredentialsEnv {
			return "/run/credentials/kojibot.service", true
		}
		return "", false
	}
	if errs := resolveCredentialKeys(c, "/etc/kojibot", env); len(errs) != 0 {
		t.Fatal(errs)
	}
	if c.Koji.Hub.Keytab != "/run/credentials/kojibot.service/koji.keytab" || c.Koji.Hub.CertFile != "/run/credentials/kojibot.service/koji.pem" {
		t.Fatalf("resolved to %q and %q", c.Koji.Hub.Keytab, c.Koji.Hub.CertFile)
	}
}
