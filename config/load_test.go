package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The secrets the tests hide; each is unique so a leak is unmistakable.
const (
	testPassword = "pw-9f3c1e77-never-shown"
	testDSN      = "postgres://kojibot:dsn-5b2a90d4-never-shown@db3/koji"
)

// clearEnv unsets every KOJIBOT_ variable for the test, restoring them after.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) {
			t.Setenv(name, "") // registers the restore
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fixture copies testdata/name into a temp dir with its SASL password file
// pointing at a real file holding testPassword, and returns the copy's path.
func fixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pw := writeFile(t, dir, "sasl-password", testPassword+"\n")
	text := strings.ReplaceAll(string(data), "/etc/kojibot/sasl-password", pw)
	if text == string(data) {
		t.Fatalf("%s has no password_file to redirect", name)
	}
	return writeFile(t, dir, "kojibot.yaml", text)
}

// keyErrors returns the KeyErrors joined in err, failing on any other error.
func keyErrors(t *testing.T, err error) []*KeyError {
	t.Helper()
	if err == nil {
		return nil
	}
	var out []*KeyError
	var walk func(error)
	walk = func(err error) {
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range multi.Unwrap() {
				walk(e)
			}
			return
		}
		var ke *KeyError
		if !errors.As(err, &ke) {
			t.Fatalf("error %q is not a *KeyError", err)
		}
		out = append(out, ke)
	}
	walk(err)
	return out
}

// errorKeys lists the keys named by err's KeyErrors.
func errorKeys(t *testing.T, err error) []string {
	t.Helper()
	var keys []string
	for _, ke := range keyErrors(t, err) {
		keys = append(keys, ke.Key)
	}
	return keys
}

func TestLoadSpecExample(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(fixture(t, "spec-example.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"irc.server", cfg.IRC.Server, "irc.libera.chat"},
		{"irc.port", cfg.IRC.Port, 6697},
		{"irc.sasl.user", cfg.IRC.SASL.User, "kojibot"},
		{"irc.sasl.password", cfg.IRC.SASL.Password.Reveal(), testPassword},
		{"irc.channels", cfg.IRC.Channels, []string{"#fedora-admin"}},
		{"irc.notify_channel", cfg.IRC.NotifyChannel, "#fedora-admin"},
		{"acl.groups", cfg.ACL.Groups, map[string][]string{"sysadmin-build": {"alice"}}},
		{"acl.commands", cfg.ACL.Commands, map[string][]string{"capacity": {"sysadmin-build"}}},
		{"koji.db.dsn", cfg.Koji.DB.DSN.Reveal(), "postgres://kojibot@db3/koji"},
		{"koji.admin_host", cfg.Koji.AdminHost, "koji-admin"},
		{"koji.hubs", cfg.Koji.Hubs, []string{"koji-hub"}},
		{"ssh.key_file", cfg.SSH.KeyFile, "/etc/kojibot/id_ed25519"},
		{"hosts[koji-hub]", cfg.Hosts["koji-hub"], Host{Address: "koji.example.org:22", Services: []string{"httpd", "kojira"}}},
		{"hosts[xenbuilder2].services", cfg.Hosts["xenbuilder2"].Services, []string{"kojid", "plague-builder"}},
		{"xen.guests[xenbuilder3]", cfg.Xen.Guests["xenbuilder3"], "disabled"},
		{"disk.shared_mounts", len(cfg.Disk.SharedMounts), 4},
		{"disk.mounts (from cleanup.dirs)", cfg.Disk.Mounts, []string{"/var/lib/mock", "/mnt/build"}},
		{"cleanup.min_age", cfg.Cleanup.MinAge, 168 * time.Hour},
		{"watch.repeat", cfg.Watch.Repeat, 6 * time.Hour},
		{"watch.connections_percent", cfg.Watch.ConnectionsPercent, 80.0},
		{"confirm.ttl", cfg.Confirm.TTL, 5 * time.Minute},
		{"http.listen", cfg.HTTP.Listen, "127.0.0.1:9090"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	// The documented example maps xenbuilder1 and xenbuilder4 to xen3 and xen8,
	// which it does not list in hosts: exactly those two are reported.
	got := errorKeys(t, cfg.ValidateWith([]string{"capacity"}))
	want := []string{"xen.guests[xenbuilder1]", "xen.guests[xenbuilder4]"}
	if !slices.Equal(got, want) {
		t.Errorf("ValidateWith named %q, want %q", got, want)
	}
}

func TestLoadFullExampleValidates(t *testing.T) {
	clearEnv(t)
	cfg, err := Load(fixture(t, "full.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := cfg.ValidateWith([]string{"capacity", "override", "restart"}); err != nil {
		t.Errorf("ValidateWith: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if cfg.Koji.DBTimezone != "America/New_York" {
		t.Errorf("koji.db_timezone = %q, want America/New_York", cfg.Koji.DBTimezone)
	}
}

func TestLoadDefaults(t *testing.T) {
	clearEnv(t)
	empty := writeFile(t, t.TempDir(), "empty.yaml", "# nothing set\n")
	for _, path := range []string{"", empty} {
		cfg, err := Load(path)
		if err != nil {
			t.Fatalf("Load(%q): %v", path, err)
		}
		if !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("Load(%q) = %+v\nwant Default() = %+v", path, cfg, Default())
		}
	}

	d := Default()
	checks := []struct {
		key       string
		got, want any
	}{
		{"irc.server", d.IRC.Server, ""}, // no network is dialled unless named
		{"irc.port", d.IRC.Port, 6697},
		{"irc.tls", d.IRC.TLS, true},
		{"irc.nick", d.IRC.Nick, "kojibot"},
		{"irc.command_prefix", d.IRC.CommandPrefix, "!koji"},
		{"irc.max_lines", d.IRC.MaxLines, 4},
		{"irc.line_bytes", d.IRC.LineBytes, 350},
		{"irc.send_rate", d.IRC.SendRate, 1.0},
		{"irc.send_burst", d.IRC.SendBurst, 4},
		{"irc.whois_timeout", d.IRC.WhoisTimeout, 5 * time.Second},
		{"irc.reconnect_max", d.IRC.ReconnectMax, 2 * time.Minute},
		{"irc.workers", d.IRC.Workers, 8},
		{"commands.user_rate", d.Commands.UserRate, 0.5},
		{"commands.user_burst", d.Commands.UserBurst, 5},
		{"acl.source", d.ACL.Source, "static"},
		{"acl.fasjson_url", d.ACL.FASJSONURL, "https://fasjson.fedoraproject.org"},
		{"acl.cache_ttl", d.ACL.CacheTTL, 5 * time.Minute},
		{"acl.timeout", d.ACL.Timeout, 5 * time.Second},
		{"acl.account_is_fas_user", d.ACL.AccountIsFASUser, false},
		{"acl.network", d.ACL.Network, "irc.libera.chat"},
		{"koji.db_user", d.Koji.DBUser, "koji"},
		{"koji.user", d.Koji.User, "kojibot"},
		{"koji.override_tag", d.Koji.OverrideTag, "dist-{release}-override"},
		{"koji.reconnect_grace", d.Koji.ReconnectGrace, 2 * time.Minute},
		{"koji.db_timezone", d.Koji.DBTimezone, ""},
		{"koji.command", d.Koji.Command, "koji"},
		{"ssh.connect_timeout", d.SSH.ConnectTimeout, 10 * time.Second},
		{"ssh.command_timeout", d.SSH.CommandTimeout, 10 * time.Minute},
		{"ssh.parallel", d.SSH.Parallel, 32},
		{"ssh.service_command", d.SSH.ServiceCommand, "sudo systemctl {action} {service}"},
		{"ssh.max_output", d.SSH.MaxOutput, 1 << 20},
		{"xen.config_dir", d.Xen.ConfigDir, "/etc/xen"},
		{"xen.reboot_command", d.Xen.RebootCommand, "xl reboot {guest}"},
		{"disk.full_percent", d.Disk.FullPercent, 90.0},
		{"disk.predict_within", d.Disk.PredictWithin, 6 * time.Hour},
		{"cleanup.dirs", d.Cleanup.Dirs, []string{"/var/lib/mock", "/mnt/build"}},
		{"cleanup.min_age", d.Cleanup.MinAge, 168 * time.Hour},
		{"watch.interval", d.Watch.Interval, 5 * time.Minute},
		{"watch.stale_after", d.Watch.StaleAfter, 10 * time.Minute},
		{"watch.repeat", d.Watch.Repeat, 6 * time.Hour},
		{"watch.connections_percent", d.Watch.ConnectionsPercent, 80.0},
		{"confirm.ttl", d.Confirm.TTL, 5 * time.Minute},
		{"outage.to", d.Outage.To, []string{"fedora-infrastructure-list@lists.fedoraproject.org", "fedora-devel-list@lists.fedoraproject.org"}},
		{"http.listen", d.HTTP.Listen, "127.0.0.1:9090"},
		{"log.level", d.Log.Level, "info"},
		{"state.dir", d.State.Dir, "/var/lib/kojibot"},
		{"commands.timeout", d.Commands.Timeout, 30 * time.Second},
		{"shutdown_timeout", d.ShutdownTimeout, 60 * time.Second},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default %s = %#v, want %#v", c.key, c.got, c.want)
		}
	}

	// Default hands out fresh slices: changing one does not change the next.
	d.Cleanup.Dirs[0] = "/changed"
	if Default().Cleanup.Dirs[0] != "/var/lib/mock" {
		t.Error("Default shares its slices between calls")
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // the keys named, in order
	}{
		{"irc.chanels", "irc:\n  chanels: ['#x']\n", nil, []string{"irc.chanels"}},
		{"acl.comands", "acl:\n  comands:\n    capacity: [sysadmin-build]\n", nil, []string{"acl.comands"}},
		{"typo with a null value", "irc:\n  nik:\n", nil, []string{"irc.nik"}},
		{"typo with an empty map", "acl:\n  comands: {}\n", nil, []string{"acl.comands"}},
		{"top-level typo", "ircc: {server: x}\n", nil, []string{"ircc"}},
		{"top-level typo, null", "wach:\n", nil, []string{"wach"}},
		{"nested section", "koji:\n  db: {dns: x}\n", nil, []string{"koji.db.dns"}},
		{"key with an underscore", "koji:\n  db_usr: koji\n", nil, []string{"koji.db_usr"}},
		{"inside a hosts entry", "hosts:\n  koji-hub: {adress: 'h:22'}\n", nil, []string{"hosts[koji-hub].adress"}},
		{"inside a dotted hosts entry", "hosts:\n  ppc3.fedora.redhat.com: {address: 'h:22', service: [kojid]}\n", nil, []string{"hosts[ppc3.fedora.redhat.com].service"}},
		{"several at once", "irc: {chanels: [], nik: x}\nacl: {comands: {}}\nhosts: {a: {adress: 'x:1', servics: []}}\nbogus: 1\n", nil,
			[]string{"acl.comands", "bogus", "hosts[a].adress", "hosts[a].servics", "irc.chanels", "irc.nik"}},
		{"in an environment JSON map", "", map[string]string{"KOJIBOT_HOSTS": `{"b1": {"adress": "b1:22"}}`}, []string{"hosts[b1].adress"}},
		{"file map replaced by the environment's", "hosts: {a: {address: 'a:22'}}\n", map[string]string{"KOJIBOT_HOSTS": `{"b1": {"address": "b1:22", "sevices": []}}`}, []string{"hosts[b1].sevices"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			path := writeFile(t, t.TempDir(), "k.yaml", tt.yaml)
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("Load accepted it: %+v", cfg)
			}
			if cfg != nil {
				t.Error("Load returned a config with its error")
			}
			got := errorKeys(t, err)
			if !slices.Equal(got, tt.want) {
				t.Errorf("named %q, want %q\nerror: %v", got, tt.want, err)
			}
			for _, ke := range keyErrors(t, err) {
				if !strings.HasPrefix(ke.Problem, "unknown key") {
					t.Errorf("%s: problem %q, want an unknown key", ke.Key, ke.Problem)
				}
			}
		})
	}
}

func TestLoadSuggestsTheKeyMeant(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, t.TempDir(), "k.yaml", "irc: {chanels: []}\nhosts: {h: {adress: 'h:22'}}\nxyzzy: 1\n")
	_, err := Load(path)
	msgs := map[string]string{}
	for _, ke := range keyErrors(t, err) {
		msgs[ke.Key] = ke.Error()
	}
	want := map[string]string{
		"irc.chanels":     "line 1: irc.chanels: unknown key (did you mean irc.channels?)",
		"hosts[h].adress": "line 2: hosts[h].adress: unknown key (did you mean hosts[h].address?)",
		"xyzzy":           "line 3: xyzzy: unknown key",
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("messages %q, want %q", msgs, want)
	}
}

// TestLoadErrorLines: a problem with a key the file sets names the key's
// line in the file; one that comes from the environment or a default names
// none.
func TestLoadErrorLines(t *testing.T) {
	clearEnv(t)
	t.Setenv("KOJIBOT_WATCH_INTERVAL", "soon")
	yaml := `# kojibot
irc:
  server: irc.example.org
  chanels:
    - "#x"
  sasl:
    usr: bot
hosts:
  ppc3.fedora.redhat.com:
    address: ppc3:22
    service: [kojid]
koji:
  db: {dsn: x}
  admin_host:
    - a
    - b
acl:
  cache_ttl: 300
disk: full
`
	_, err := Load(writeFile(t, t.TempDir(), "k.yaml", yaml))
	got := map[string]int{}
	for _, ke := range keyErrors(t, err) {
		got[ke.Key] = ke.Line
	}
	want := map[string]int{
		"irc.chanels":                           4,
		"irc.sasl.usr":                          7,
		"hosts[ppc3.fedora.redhat.com].service": 11,
		"koji.admin_host":                       14,
		"acl.cache_ttl":                         18,
		"disk":                                  19,
		"watch.interval":                        0, // from the environment
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lines %v, want %v\nerror: %v", got, want, err)
	}
	if !strings.Contains(err.Error(), "line 4: irc.chanels: unknown key (did you mean irc.channels?)") {
		t.Errorf("error does not place irc.chanels on line 4: %v", err)
	}
}

func TestLoadBadValues(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want map[string]string // key -> substring of its message
	}{
		{"wrong type", "irc: {port: abc}\n", nil, map[string]string{"irc.port": `got "abc"; expected a whole number`}},
		{"number for a string", "hosts: {h: {address: 22}}\n", nil, map[string]string{"hosts[h].address": "got 22 (a number); expected a string"}},
		{"list for a map", "xen: {guests: [a, b]}\n", nil, map[string]string{"xen.guests": "got a list; expected a mapping"}},
		{"scalar for a section", "irc: foo\n", nil, map[string]string{"irc": "is a string; expected a section of keys"}},
		{"duration without unit", "acl: {cache_ttl: 300}\n", nil, map[string]string{"acl.cache_ttl": "300 has no unit"}},
		{"bad duration", "watch: {interval: 5 minutes}\n", nil, map[string]string{"watch.interval": `"5 minutes" is not a duration`}},
		{"bad environment value", "", map[string]string{"KOJIBOT_IRC_PORT": "x7"}, map[string]string{"irc.port": `got "x7"; expected a whole number (from KOJIBOT_IRC_PORT)`}},
		{"bad environment JSON", "", map[string]string{"KOJIBOT_ACL_GROUPS": "[1,2]"}, map[string]string{"acl.groups": "not a JSON object"}},
		{"bad size", "ssh: {max_output: 12XiB}\n", nil, map[string]string{"ssh.max_output": `"12XiB" is not a size`}},
		{"in a list", "irc: {channels: ['#ok', 7]}\n", nil, map[string]string{"irc.channels[1]": "got 7 (a number); expected a string"}},
		{"in a dotted hosts entry", "hosts: {ppc3.fedora.redhat.com: {address: 22}}\n", nil,
			map[string]string{"hosts[ppc3.fedora.redhat.com].address": "got 22 (a number); expected a string"}},
		{"unknown in a dotted environment entry", "", map[string]string{"KOJIBOT_HOSTS": `{"a.b": {"adress": "a:22"}}`},
			map[string]string{"hosts[a.b].adress": "unknown key (did you mean hosts[a.b].address?) (from KOJIBOT_HOSTS)"}},
		{"all at once", "irc: {port: abc, chanels: []}\nacl: {cache_ttl: 300}\nwatch: {intervall: 5m}\n", nil, map[string]string{
			"irc.port":        "expected a whole number",
			"irc.chanels":     "unknown key",
			"acl.cache_ttl":   "has no unit",
			"watch.intervall": "unknown key",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := Load(writeFile(t, t.TempDir(), "k.yaml", tt.yaml))
			got := map[string]string{}
			for _, ke := range keyErrors(t, err) {
				got[ke.Key] = ke.Problem
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d problems %q, want %d", len(got), got, len(tt.want))
			}
			for key, sub := range tt.want {
				if msg, ok := got[key]; !ok {
					t.Errorf("%s not named; error: %v", key, err)
				} else if !strings.Contains(msg, sub) {
					t.Errorf("%s: %q does not say %q", key, msg, sub)
				}
			}
		})
	}
}

func TestLoadEnvOverrides(t *testing.T) {
	file := `irc: {port: 6667, channels: ['#file']}
koji: {db: {dsn: "postgres://file@db/koji"}, db_user: filerole}
hosts: {file-host: {address: 'f:22'}}
`
	tests := []struct {
		env   string
		value string
		get   func(*Config) any
		want  any
	}{
		{"KOJIBOT_KOJI_DB_DSN", "postgres://env@db/koji", func(c *Config) any { return c.Koji.DB.DSN.Reveal() }, "postgres://env@db/koji"},
		{"KOJIBOT_KOJI_DB_USER", "envrole", func(c *Config) any { return c.Koji.DBUser }, "envrole"},
		{"KOJIBOT_IRC_PORT", "7000", func(c *Config) any { return c.IRC.Port }, 7000},
		{"KOJIBOT_IRC_TLS", "false", func(c *Config) any { return c.IRC.TLS }, false},
		{"KOJIBOT_IRC_CHANNELS", "#a, #b", func(c *Config) any { return c.IRC.Channels }, []string{"#a", "#b"}},
		{"KOJIBOT_IRC_CHANNELS", "#a", func(c *Config) any { return c.IRC.NotifyChannel }, "#a"},
		{"KOJIBOT_COMMANDS_USER_RATE", "0.25", func(c *Config) any { return c.Commands.UserRate }, 0.25},
		{"KOJIBOT_ACL_ACCOUNT_IS_FAS_USER", "false", func(c *Config) any { return c.ACL.AccountIsFASUser }, false},
		{"KOJIBOT_CLEANUP_MIN_AGE", "3d", func(c *Config) any { return c.Cleanup.MinAge }, 72 * time.Hour},
		{"KOJIBOT_WATCH_REPEAT", "1d12h", func(c *Config) any { return c.Watch.Repeat }, 36 * time.Hour},
		{"KOJIBOT_WATCH_CONNECTIONS_PERCENT", "75.5", func(c *Config) any { return c.Watch.ConnectionsPercent }, 75.5},
		{"KOJIBOT_SSH_MAX_OUTPUT", "2MiB", func(c *Config) any { return c.SSH.MaxOutput }, 2 << 20},
		{"KOJIBOT_HTTP_LISTEN", "", func(c *Config) any { return c.HTTP.Listen }, ""},
		{"KOJIBOT_HOSTS", `{"Env-Host": {"address": "e:22", "services": ["kojid"]}}`, func(c *Config) any { return c.Hosts },
			map[string]Host{"env-host": {Address: "e:22", Services: []string{"kojid"}}}},
		{"KOJIBOT_ACL_GROUPS", `{"sysadmin-build": ["alice", "bob"]}`, func(c *Config) any { return c.ACL.Groups },
			map[string][]string{"sysadmin-build": {"alice", "bob"}}},
		{"KOJIBOT_XEN_GUESTS", `{"xenbuilder1": "xen3"}`, func(c *Config) any { return c.Xen.Guests }, map[string]string{"xenbuilder1": "xen3"}},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(tt.env, tt.value)
			cfg, err := Load(writeFile(t, t.TempDir(), "k.yaml", file))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := tt.get(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}

	// Without the environment, the file's values stand.
	clearEnv(t)
	cfg, err := Load(writeFile(t, t.TempDir(), "k.yaml", file))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IRC.Port != 6667 || cfg.Koji.DBUser != "filerole" || cfg.Koji.DB.DSN.Reveal() != "postgres://file@db/koji" {
		t.Errorf("file values not loaded: %+v", cfg)
	}
}

// TestLoadEnvReachesEveryStringKey sets every string key from the
// environment at once, proving each leaf is bound to its own variable.
func TestLoadEnvReachesEveryStringKey(t *testing.T) {
	clearEnv(t)
	want := map[string]string{}
	seen := map[string]string{}
	walkFields(reflect.ValueOf(defaults()).Elem(), "", func(path string, val reflect.Value) {
		env := envName(path)
		if other, dup := seen[env]; dup {
			t.Errorf("%s and %s share %s", other, path, env)
		}
		seen[env] = path
		if val.Kind() != reflect.String || strings.HasSuffix(path, "_file") {
			return
		}
		want[path] = "value-of-" + path
		t.Setenv(env, want[path])
	})
	if len(want) < 20 {
		t.Fatalf("only %d string keys found", len(want))
	}
	cfg, err := Load("")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	walkFields(reflect.ValueOf(cfg).Elem(), "", func(path string, val reflect.Value) {
		if w, ok := want[path]; ok && val.String() != w {
			t.Errorf("%s = %q, want %q from %s", path, val.String(), w, envName(path))
		}
	})
}

func TestLoadMapKeys(t *testing.T) {
	clearEnv(t)
	yaml := `hosts:
  PPC3.fedora.redhat.com: {address: "ppc3.fedora.redhat.com:22"}
  Koji-Admin: {address: "a:22"}
koji: {admin_host: KOJI-ADMIN, db: {dsn: x}}
irc: {server: irc.example.org}
acl:
  accounts: {AliceIRC: alice}
`
	cfg, err := Load(writeFile(t, t.TempDir(), "k.yaml", yaml))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Hosts["ppc3.fedora.redhat.com"]; !ok {
		t.Errorf("dotted host name not kept whole: %v", cfg.Hosts)
	}
	if cfg.Koji.AdminHost != "koji-admin" {
		t.Errorf("koji.admin_host = %q, want it lower-cased", cfg.Koji.AdminHost)
	}
	if cfg.ACL.Accounts["aliceirc"] != "alice" {
		t.Errorf("acl.accounts = %v, want the account lower-cased", cfg.ACL.Accounts)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5m", 5 * time.Minute, true},
		{"168h", 168 * time.Hour, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{" 90s ", 90 * time.Second, true},
		{"0s", 0, true},
		{"7x", 0, false},
		{"d", 0, false},
		{"7d12", 0, false},
		{"", 0, false},
		{"-1d", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	pwFile := writeFile(t, dir, "pw", testPassword+"\n")
	crlfFile := writeFile(t, dir, "pw-crlf", testPassword+"\r\n")
	dsnFile := writeFile(t, dir, "dsn", testDSN+"\n")
	emptyFile := writeFile(t, dir, "empty", "\n")
	missing := filepath.Join(dir, "missing")

	type result struct{ password, dsn string }
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		want    result
		errKeys []string // when Load must fail
		errSays []string // in the error
	}{
		{name: "password_file in the file",
			yaml: fmt.Sprintf("irc: {sasl: {user: bot, password_file: %q}}\nkoji: {db: {dsn_file: %q}}\n", pwFile, dsnFile),
			want: result{testPassword, testDSN}},
		{name: "CRLF trimmed",
			yaml: fmt.Sprintf("irc: {sasl: {password_file: %q}}\n", crlfFile),
			want: result{password: testPassword}},
		{name: "dsn_file in the environment",
			env:  map[string]string{"KOJIBOT_KOJI_DB_DSN_FILE": dsnFile, "KOJIBOT_IRC_SASL_PASSWORD_FILE": pwFile},
			want: result{testPassword, testDSN}},
		{name: "environment file wins over the file's value",
			yaml: "koji: {db: {dsn: postgres://file@db/koji}}\n",
			env:  map[string]string{"KOJIBOT_KOJI_DB_DSN_FILE": dsnFile},
			want: result{dsn: testDSN}},
		{name: "environment value wins over the file's file, unread",
			yaml: fmt.Sprintf("koji: {db: {dsn_file: %q}}\n", missing),
			env:  map[string]string{"KOJIBOT_KOJI_DB_DSN": testDSN},
			want: result{dsn: testDSN}},
		{name: "both in the file",
			yaml:    fmt.Sprintf("koji: {db: {dsn: %q, dsn_file: %q}}\n", testDSN, dsnFile),
			errKeys: []string{"koji.db.dsn"}, errSays: []string{"koji.db.dsn_file", "only one"}},
		{name: "state dsn both in the file",
			yaml:    fmt.Sprintf("state: {dsn: %q, dsn_file: %q}\n", testDSN, dsnFile),
			errKeys: []string{"state.dsn"}, errSays: []string{"state.dsn_file", "only one"}},
		{name: "both in the environment",
			env:     map[string]string{"KOJIBOT_IRC_SASL_PASSWORD": testPassword, "KOJIBOT_IRC_SASL_PASSWORD_FILE": pwFile},
			errKeys: []string{"irc.sasl.password"}, errSays: []string{"KOJIBOT_IRC_SASL_PASSWORD_FILE", "only one"}},
		{name: "missing file",
			yaml:    fmt.Sprintf("irc: {sasl: {password_file: %q}}\n", missing),
			errKeys: []string{"irc.sasl.password_file"}, errSays: []string{missing, "no such file"}},
		{name: "directory",
			env:     map[string]string{"KOJIBOT_KOJI_DB_DSN_FILE": dir},
			errKeys: []string{"koji.db.dsn_file"}, errSays: []string{dir}},
		{name: "empty file",
			yaml:    fmt.Sprintf("koji: {db: {dsn_file: %q}}\n", emptyFile),
			errKeys: []string{"koji.db.dsn_file"}, errSays: []string{emptyFile, "empty"}},
		{name: "both problems at once",
			yaml:    fmt.Sprintf("irc: {sasl: {password: %q, password_file: %q}}\nkoji: {db: {dsn_file: %q}}\n", testPassword, pwFile, missing),
			errKeys: []string{"irc.sasl.password", "koji.db.dsn_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := Load(writeFile(t, t.TempDir(), "k.yaml", tt.yaml))
			if tt.errKeys != nil {
				if err == nil {
					t.Fatalf("Load accepted it")
				}
				if got := errorKeys(t, err); !slices.Equal(got, tt.errKeys) {
					t.Errorf("named %q, want %q; error: %v", got, tt.errKeys, err)
				}
				for _, s := range tt.errSays {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				assertNoSecret(t, "error", err.Error())
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := result{cfg.IRC.SASL.Password.Reveal(), cfg.Koji.DB.DSN.Reveal()}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestSecretAtMostOneForm: for each secret, <key> and <key>_file may not
// both be set, in the file or in the environment, and <key>_file alone,
// from either, is read into <key>.
func TestSecretAtMostOneForm(t *testing.T) {
	for _, key := range SecretKeys {
		t.Run(key, func(t *testing.T) {
			dir := t.TempDir()
			secretFile := writeFile(t, dir, "secret", testPassword+"\n")
			// section writes the sections of key, then each name: value
			// pair of leaves inside the last.
			segs := strings.Split(key, ".")
			section := func(leaves ...string) string {
				var b strings.Builder
				for i, seg := range segs[:len(segs)-1] {
					fmt.Fprintf(&b, "%s%s:\n", strings.Repeat("  ", i), seg)
				}
				for i := 0; i+1 < len(leaves); i += 2 {
					fmt.Fprintf(&b, "%s%s: %q\n", strings.Repeat("  ", len(segs)-1), leaves[i], leaves[i+1])
				}
				return b.String()
			}
			leaf := segs[len(segs)-1]
			both := section(leaf, testPassword, leaf+"_file", secretFile)

			clearEnv(t)
			_, err := Load(writeFile(t, dir, "both.yaml", both))
			if got := errorKeys(t, err); !slices.Equal(got, []string{key}) || !strings.Contains(err.Error(), key+"_file") || !strings.Contains(err.Error(), "only one") {
				t.Errorf("both in the file: %v", err)
			}
			assertNoSecret(t, "error", fmt.Sprint(err))

			t.Setenv(envName(key), testPassword)
			t.Setenv(envName(key+"_file"), secretFile)
			_, err = Load("")
			if got := errorKeys(t, err); !slices.Equal(got, []string{key}) || !strings.Contains(err.Error(), envName(key+"_file")) {
				t.Errorf("both in the environment: %v", err)
			}
			assertNoSecret(t, "error", fmt.Sprint(err))

			for name, setup := range map[string]func() string{
				"file": func() string {
					clearEnv(t)
					return writeFile(t, dir, "one.yaml", section(leaf+"_file", secretFile))
				},
				"environment": func() string {
					clearEnv(t)
					t.Setenv(envName(key+"_file"), secretFile)
					return ""
				},
			} {
				cfg, err := Load(setup())
				if err != nil {
					t.Fatalf("%s_file from the %s: %v", key, name, err)
				}
				if secret, _ := secretFields[key](cfg); secret.Reveal() != testPassword {
					t.Errorf("%s_file from the %s: %s not read", key, name, key)
				}
			}
		})
	}
}

// TestEverySecretHasAFileKey keeps the <key>_file form available for every
// Secret that is added to Config: each is in SecretKeys, whose fields are
// the secret and the string tagged <key>_file beside it.
func TestEverySecretHasAFileKey(t *testing.T) {
	var found []string
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, prefix string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			path := prefix + tagName(f)
			switch {
			case f.Type == reflect.TypeFor[Secret]():
				found = append(found, path)
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, path+".")
			case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem(), path+"[*].")
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	if !slices.Equal(found, SecretKeys) {
		t.Errorf("secrets %q, SecretKeys %q", found, SecretKeys)
	}
	if len(secretFields) != len(SecretKeys) {
		t.Errorf("%d secretFields for %d SecretKeys", len(secretFields), len(SecretKeys))
	}
	for _, key := range SecretKeys {
		c := new(Config)
		secret, file := secretFields[key](c)
		*secret, *file = "the-secret", "the-file"
		var gotSecret, gotFile string
		walkFields(reflect.ValueOf(c).Elem(), "", func(path string, val reflect.Value) {
			switch {
			case val.Kind() == reflect.String && val.String() == "the-secret":
				gotSecret = path
			case val.Kind() == reflect.String && val.String() == "the-file":
				gotFile = path
			}
		})
		if gotSecret != key || gotFile != key+"_file" {
			t.Errorf("secretFields[%s] sets %s and %s", key, gotSecret, gotFile)
		}
	}
}

// assertNoSecret fails when s holds either test secret, or the password
// part of the DSN.
func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{testPassword, testDSN, "dsn-5b2a90d4", "987654321"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows a secret: %s", what, s)
		}
	}
}

func TestSecretsNeverShown(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	pwFile := writeFile(t, dir, "pw", testPassword+"\n")
	cfg, err := Load(writeFile(t, dir, "k.yaml",
		fmt.Sprintf("irc: {sasl: {user: bot, password_file: %q}}\nkoji: {db: {dsn: %q}}\n", pwFile, testDSN)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IRC.SASL.Password.Reveal() != testPassword || cfg.Koji.DB.DSN.Reveal() != testDSN {
		t.Fatal("secrets not loaded")
	}
	jsonText, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg),
		fmt.Sprintf("%v", *cfg), fmt.Sprintf("%+v", *cfg), fmt.Sprintf("%#v", *cfg),
		fmt.Sprintf("%s", cfg.Koji.DB), fmt.Sprint(cfg.IRC.SASL.Password),
		string(jsonText),
	} {
		assertNoSecret(t, "printed config", s)
		if !strings.Contains(s, "[redacted]") {
			t.Errorf("printed config does not show [redacted]: %s", s)
		}
	}

	// Break everything else: Validate's errors still hide the secrets.
	cfg.IRC.Port = 0
	cfg.IRC.Nick = "9 bad"
	cfg.Koji.OverrideTag = "no-release"
	cfg.HTTP.PublicURL = "ftp://x"
	err = cfg.Validate()
	if len(keyErrors(t, err)) < 4 {
		t.Fatalf("Validate found too little: %v", err)
	}
	assertNoSecret(t, "Validate error", err.Error())

	// A secret of the wrong type is named, its value is not.
	for _, yaml := range []string{
		fmt.Sprintf("koji: {db: {dsn: [%q]}}\n", testDSN),
		fmt.Sprintf("koji: {db: {dsn: {x: %q}}}\n", testDSN),
		"irc: {sasl: {password: 987654321}}\n",
		fmt.Sprintf("irc: {sasl: {pasword: %q}}\n", testPassword),
	} {
		_, err := Load(writeFile(t, dir, "bad.yaml", yaml))
		if err == nil {
			t.Fatalf("Load accepted %q", yaml)
		}
		assertNoSecret(t, "Load error", err.Error())
	}
}
