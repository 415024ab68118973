package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateKerberos(t *testing.T) {
	dir := t.TempDir()
	keytab := filepath.Join(dir, "kojibot.keytab")
	// A keytab's header (version 0x0502) and no entries is enough here.
	if err := os.WriteFile(keytab, []byte{0x05, 0x02}, 0o600); err != nil {
		t.Fatal(err)
	}
	notKeytab := filepath.Join(dir, "password.txt")
	if err := os.WriteFile(notKeytab, []byte("hunter2-not-a-keytab\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	krb5 := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(krb5, []byte("[libdefaults]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fasjson := func(c *Config) {
		c.ACL.Source = "fasjson"
		c.ACL.Keytab = keytab
		c.ACL.Krb5Conf = krb5
	}
	tests := []struct {
		name    string
		edit    func(*Config)
		key     string // "" means valid
		problem string
	}{
		{"keytab with fasjson", fasjson, "", ""},
		{"principal", func(c *Config) { fasjson(c); c.ACL.Principal = "kojibot/bot.example.org@EXAMPLE.ORG" }, "", ""},
		{"no keytab, no principal", func(c *Config) { c.ACL.Source = "fasjson" }, "", ""},
		{"missing keytab", func(c *Config) { fasjson(c); c.ACL.Keytab = filepath.Join(dir, "gone.keytab") }, "acl.keytab", "gone.keytab\" does not exist"},
		{"keytab is a directory", func(c *Config) { fasjson(c); c.ACL.Keytab = dir }, "acl.keytab", "is a directory"},
		{"not a keytab", func(c *Config) { fasjson(c); c.ACL.Keytab = notKeytab }, "acl.keytab", "is not a keytab file"},
		{"keytab with static", func(c *Config) { fasjson(c); c.ACL.Source = "static" }, "acl.keytab", "acl.source: static"},
		{"principal without keytab", func(c *Config) { c.ACL.Principal = "kojibot" }, "acl.principal", "acl.keytab is not"},
		{"bad principal", func(c *Config) { fasjson(c); c.ACL.Principal = "a@b@c" }, "acl.principal", "is not a principal"},
		{"missing krb5.conf", func(c *Config) { fasjson(c); c.ACL.Krb5Conf = filepath.Join(dir, "nope.conf") }, "acl.krb5_conf", "does not exist"},
		{"empty krb5.conf", func(c *Config) { fasjson(c); c.ACL.Krb5Conf = "" }, "acl.krb5_conf", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(c)
			err := c.ValidateWith(knownCommands)
			if tt.key == "" {
				if err != nil {
					t.Fatalf("ValidateWith: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateWith accepted it; want %s: %s", tt.key, tt.problem)
			}
			if !strings.Contains(err.Error(), tt.key) || !strings.Contains(err.Error(), tt.problem) {
				t.Fatalf("ValidateWith: %v; want %s naming %q", err, tt.key, tt.problem)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the file's content: %v", err)
			}
		})
	}
}

func TestDefaultKrb5Conf(t *testing.T) {
	if got := Default().ACL.Krb5Conf; got != "/etc/krb5.conf" {
		t.Fatalf("default acl.krb5_conf = %q; want /etc/krb5.conf", got)
	}
}
