package contrib

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/config"
)

// shippedConfigs lists every configuration file this directory ships: the
// example, and each file the RPM spec installs from here (its %config).
func shippedConfigs(t *testing.T) []string {
	t.Helper()
	files := []string{"kojibot.yaml.example"}
	spec, err := os.ReadFile("kojibot.spec")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`contrib/(\S+\.ya?ml\S*)`).FindAllStringSubmatch(string(spec), -1) {
		if !slices.Contains(files, m[1]) {
			files = append(files, m[1])
		}
	}
	return files
}

// TestShippedConfigsGiveNoFASIdentityToAnAccountName: with every config
// this package ships (the example the RPM installs as
// /etc/kojibot/kojibot.yaml), a services account named like a FAS user of
// acl.groups is not that user: on a public network anyone can register
// the name.
func TestShippedConfigsGiveNoFASIdentityToAnAccountName(t *testing.T) {
	creds := t.TempDir()
	for _, name := range []string{"sasl-password", "id_ed25519"} {
		if err := os.WriteFile(filepath.Join(creds, name), []byte("not-a-real-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The hub's keytab: its header is what check-config reads.
	if err := os.WriteFile(filepath.Join(creds, "koji.keytab"), []byte{0x05, 0x02}, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	for _, file := range shippedConfigs(t) {
		cfg, err := config.Load(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: Validate: %v", file, err)
		}
		var members []string
		for _, users := range cfg.ACL.Groups {
			members = append(members, users...)
		}
		if len(members) == 0 {
			t.Fatalf("%s: acl.groups names no FAS user to squat", file)
		}
		checker, err := acl.New(cfg.ACL, acl.Options{MatrixFASServer: cfg.Matrix.FASServer})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, user := range members {
			got, err := checker.Resolve(context.Background(), acl.Caller{Account: user})
			if err == nil || !errors.Is(err, acl.ErrNoFASUser) {
				t.Errorf("%s: the services account %q resolves to FAS user %q (err %v); want no FAS identity", file, user, got, err)
			}
			if d := checker.Authorize(context.Background(), acl.Caller{Account: user}, "capacity", false); d.Allowed {
				t.Errorf("%s: the services account %q may run capacity", file, user)
			}
		}
	}
}
