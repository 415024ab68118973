package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCredentialPath(t *testing.T) {
	creds := func(dir string) func(string) (string, bool) {
		return func(name string) (string, bool) {
			if name == CredentialsEnv && dir != "" {
				return dir, true
			}
			return "", false
		}
	}
	const run = "/run/credentials/kojibot.service"
	tests := []struct {
		name, path, base, credDir string
		want, errSays             string
	}{
		{name: "absolute, with credentials", path: "/etc/kojibot/pw", base: "/etc/kojibot", credDir: run, want: "/etc/kojibot/pw"},
		{name: "absolute, without", path: "/srv/pw", base: "/etc/kojibot", want: "/srv/pw"},
		{name: "credential name", path: "sasl-password", base: "/etc/kojibot", credDir: run, want: run + "/sasl-password"},
		{name: "relative to the config's directory", path: "sasl-password", base: "/etc/kojibot", want: "/etc/kojibot/sasl-password"},
		{name: "relative with sub-directory, no credentials", path: "secrets/pw", base: "/etc/kojibot", want: "/etc/kojibot/secrets/pw"},
		{name: "no config file", path: "pw", want: "pw"},
		{name: "empty stays empty", path: "", base: "/etc/kojibot", credDir: run, want: ""},
		{name: "escape refused", path: "../../etc/shadow", base: "/etc/kojibot", credDir: run, errSays: "credential name"},
		{name: "sub-directory refused", path: "a/b", credDir: run, errSays: "no \"/\""},
		{name: "dot-dot refused", path: "..", credDir: run, errSays: "credential name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CredentialPath(tc.path, tc.base, creds(tc.credDir))
			if tc.errSays != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSays) {
					t.Fatalf("CredentialPath(%q) = %q, %v; want an error saying %q", tc.path, got, err, tc.errSays)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CredentialPath(%q, %q) = %q, %v; want %q", tc.path, tc.base, got, err, tc.want)
			}
		})
	}
}

// TestLoadReadsSystemdCredentials is the unit's way of giving secrets:
// LoadCredential=sasl-password:/etc/kojibot/sasl-password and
// password_file: sasl-password in the file.
func TestLoadReadsSystemdCredentials(t *testing.T) {
	clearEnv(t)
	confDir, credDir := t.TempDir(), t.TempDir()
	writeFile(t, credDir, "sasl-password", testPassword+"\n")
	writeFile(t, credDir, "koji-dsn", testDSN+"\n")
	// A decoy beside the configuration: under systemd it must not be read.
	writeFile(t, confDir, "sasl-password", "decoy\n")
	path := writeFile(t, confDir, "kojibot.yaml",
		"irc: {sasl: {user: bot, password_file: sasl-password}}\n"+
			"koji: {db: {dsn_file: koji-dsn}}\n"+
			"ssh: {key_file: id_ed25519, known_hosts: /etc/ssh/ssh_known_hosts}\n"+
			"acl: {keytab: kojibot.keytab}\n")

	t.Setenv(CredentialsEnv, credDir)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IRC.SASL.Password.Reveal() != testPassword || cfg.Koji.DB.DSN.Reveal() != testDSN {
		t.Fatal("secrets not read from $CREDENTIALS_DIRECTORY")
	}
	if want := filepath.Join(credDir, "sasl-password"); cfg.IRC.SASL.PasswordFile != want {
		t.Errorf("password_file = %q, want %q", cfg.IRC.SASL.PasswordFile, want)
	}
	if want := filepath.Join(credDir, "id_ed25519"); cfg.SSH.KeyFile != want {
		t.Errorf("ssh.key_file = %q, want %q", cfg.SSH.KeyFile, want)
	}
	if want := filepath.Join(credDir, "kojibot.keytab"); cfg.ACL.Keytab != want {
		t.Errorf("acl.keytab = %q, want %q", cfg.ACL.Keytab, want)
	}
	if cfg.SSH.KnownHosts != "/etc/ssh/ssh_known_hosts" {
		t.Errorf("ssh.known_hosts = %q, want it unchanged", cfg.SSH.KnownHosts)
	}

	// The same file from a shell (check-config): beside the configuration.
	if err := os.Unsetenv(CredentialsEnv); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if err == nil {
		t.Fatal("koji-dsn is not beside the configuration, yet Load succeeded")
	}
	if ke := keyErrors(t, err); len(ke) != 1 || ke[0].Key != "koji.db.dsn_file" || !strings.Contains(ke[0].Problem, filepath.Join(confDir, "koji-dsn")) {
		t.Fatalf("errors = %v; want one for koji.db.dsn_file naming %s", err, filepath.Join(confDir, "koji-dsn"))
	}
	writeFile(t, confDir, "koji-dsn", testDSN+"\n")
	if cfg, err = Load(path); err != nil {
		t.Fatal(err)
	}
	if cfg.IRC.SASL.Password.Reveal() != "decoy" || cfg.SSH.KeyFile != filepath.Join(confDir, "id_ed25519") {
		t.Fatalf("without $%s, relative paths are not read beside the configuration (key_file %q)", CredentialsEnv, cfg.SSH.KeyFile)
	}
}

// TestLoadRefusesCredentialEscape: under systemd, a relative *_file must be
// a credential name, not a way out of the credentials directory.
func TestLoadRefusesCredentialEscape(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "kojibot.yaml", "irc: {sasl: {user: bot, password_file: ../pw}}\nssh: {key_file: keys/id}\n")
	t.Setenv(CredentialsEnv, t.TempDir())
	_, err := Load(path)
	got := map[string]bool{}
	for _, ke := range keyErrors(t, err) {
		got[ke.Key] = strings.Contains(ke.Problem, "credential name")
	}
	if !got["irc.sasl.password_file"] || !got["ssh.key_file"] {
		t.Fatalf("Load = %v; want irc.sasl.password_file and ssh.key_file refused as credential names", err)
	}
}
