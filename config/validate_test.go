package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// validConfig is a small configuration that passes Validate; each test case
// breaks one thing in it.
func validConfig() *Config {
	c := Default()
	c.IRC.Server = "irc.libera.chat"
	c.IRC.SASL = SASL{User: "kojibot", Password: Secret(testPassword)}
	c.IRC.Channels = []string{"#fedora-admin", "#fedora-noc"}
	c.IRC.NotifyChannel = "#fedora-noc"
	c.ACL.Groups = map[string][]string{"sysadmin-build": {"alice"}, "sysadmin-main": {"bob"}}
	c.ACL.Accounts = map[string]string{"alice_irc": "alice"}
	c.ACL.Commands = map[string][]string{
		"capacity":         {"sysadmin-build"},
		"connections kill": {"sysadmin-main"},
		"hosts":            {"*"},
		"whoami":           {"@identified"},
	}
	c.Koji.DB.DSN = Secret(testDSN)
	c.Koji.AdminHost = "koji-admin"
	c.Koji.Hubs = []string{"koji-hub"}
	c.SSH.JumpHost = "bastion.example.org:22"
	c.Hosts = map[string]Host{
		"koji-hub":               {Address: "koji.example.org:22", Services: []string{"httpd", "kojira"}},
		"koji-admin":             {Address: "[2001:db8::1]:22"},
		"ppc3.fedora.redhat.com": {Address: "ppc3.fedora.redhat.com:22", Services: []string{"kojid", "plague-builder@1.service"}},
		"xen4":                   {Address: "xen4.example.org:2222"},
	}
	c.Xen.Guests = map[string]string{"ppc3.fedora.redhat.com": "xen4", "xenbuilder3": "disabled"}
	c.Disk.SharedMounts = []string{"/mnt/koji"}
	c.Disk.SharedFrom = "koji-hub"
	c.HTTP.PublicURL = "https://kojibot.example.org/"
	return c
}

// knownCommands stands in for the commands package's catalogue.
var knownCommands = []string{"capacity", "connections", "connections kill", "hosts", "override", "restart", "whoami"}

func TestValidConfigIsValid(t *testing.T) {
	if err := validConfig().ValidateWith(knownCommands); err != nil {
		t.Fatalf("ValidateWith: %v", err)
	}
	c := validConfig()
	c.ACL.Source = "fasjson"
	c.HTTP.Listen = ""
	c.HTTP.PublicURL = ""
	c.SSH.JumpHost = ""
	c.Koji.AdminHost = ""
	c.Disk.SharedFrom = ""
	c.Disk.SharedMounts = nil
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate with optional keys empty: %v", err)
	}
}

func TestValidateDefault(t *testing.T) {
	keys := errorKeys(t, Default().Validate())
	if !slices.Equal(keys, []string{"irc.server", "koji.db.dsn"}) {
		t.Errorf("Default().Validate() named %q, want irc.server (no transport) and koji.db.dsn", keys)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(*Config)
		key    string   // the key named
		says   []string // in its message: the bad value and what is expected
	}{
		{"empty server", func(c *Config) { c.IRC.Server = "" }, "irc.server", []string{"no transport", "irc.server", "matrix.user_id"}},
		{"port 0", func(c *Config) { c.IRC.Port = 0 }, "irc.port", []string{"0", "1 to 65535"}},
		{"port too big", func(c *Config) { c.IRC.Port = 65536 }, "irc.port", []string{"65536", "1 to 65535"}},
		{"nick with space", func(c *Config) { c.IRC.Nick = "koji bot" }, "irc.nick", []string{`"koji bot"`}},
		{"nick starting with a digit", func(c *Config) { c.IRC.Nick = "9bot" }, "irc.nick", []string{`"9bot"`}},
		{"sasl user without password", func(c *Config) { c.IRC.SASL.Password = "" }, "irc.sasl.password", []string{"irc.sasl.user"}},
		{"channel without #", func(c *Config) { c.IRC.Channels[0] = "fedora-admin" }, "irc.channels[0]", []string{`"fedora-admin"`, "# or &"}},
		{"channel with a comma", func(c *Config) { c.IRC.Channels[0] = "#a,#b" }, "irc.channels[0]", []string{`"#a,#b"`}},
		{"notify channel not joined", func(c *Config) { c.IRC.NotifyChannel = "#elsewhere" }, "irc.notify_channel", []string{`"#elsewhere"`, "#fedora-admin, #fedora-noc"}},
		{"empty prefix", func(c *Config) { c.IRC.CommandPrefix = "" }, "irc.command_prefix", []string{`""`, "without spaces"}},
		{"prefix with space", func(c *Config) { c.IRC.CommandPrefix = "! koji" }, "irc.command_prefix", []string{`"! koji"`}},
		{"max_lines 1", func(c *Config) { c.IRC.MaxLines = 1 }, "irc.max_lines", []string{"1", "at least 2"}},
		{"line_bytes huge", func(c *Config) { c.IRC.LineBytes = 600 }, "irc.line_bytes", []string{"600"}},
		{"send_rate 0", func(c *Config) { c.IRC.SendRate = 0 }, "irc.send_rate", []string{"0"}},
		{"workers 0", func(c *Config) { c.IRC.Workers = 0 }, "irc.workers", []string{"at least 1"}},
		{"whois_timeout 0", func(c *Config) { c.IRC.WhoisTimeout = 0 }, "irc.whois_timeout", []string{"0s", "greater than zero"}},
		{"acl source", func(c *Config) { c.ACL.Source = "ldap" }, "acl.source", []string{`"ldap"`, "static or fasjson"}},
		{"fasjson url", func(c *Config) { c.ACL.Source = "fasjson"; c.ACL.FASJSONURL = "fasjson.example.org" }, "acl.fasjson_url", []string{`"fasjson.example.org"`, "http(s) URL"}},
		{"fasjson over http", func(c *Config) { c.ACL.Source = "fasjson"; c.ACL.FASJSONURL = "http://fasjson.fedoraproject.org" }, "acl.fasjson_url", []string{`"http://fasjson.fedoraproject.org"`, "plain http", "expected https"}},
		{"fasjson over http to a name", func(c *Config) { c.ACL.Source = "fasjson"; c.ACL.FASJSONURL = "HTTP://127.0.0.1.nip.io:8080" }, "acl.fasjson_url", []string{"plain http"}},
		{"fasjson over http to an address", func(c *Config) { c.ACL.Source = "fasjson"; c.ACL.FASJSONURL = "http://10.0.0.5/fasjson" }, "acl.fasjson_url", []string{"plain http"}},
		{"cache_ttl negative", func(c *Config) { c.ACL.CacheTTL = -time.Second }, "acl.cache_ttl", []string{"-1s"}},
		{"account name", func(c *Config) { c.ACL.Accounts["bad account"] = "alice" }, "acl.accounts[bad account]", []string{`"bad account"`}},
		{"account's FAS user", func(c *Config) { c.ACL.Accounts["bob_irc"] = "bob smith" }, "acl.accounts[bob_irc]", []string{`"bob smith"`, "FAS username"}},
		{"group name", func(c *Config) { c.ACL.Groups["bad/group"] = nil }, "acl.groups[bad/group]", []string{`"bad/group"`}},
		{"group member", func(c *Config) { c.ACL.Groups["sysadmin-build"] = []string{"alice", "b@d"} }, "acl.groups[sysadmin-build][1]", []string{`"b@d"`}},
		{"command name form", func(c *Config) { c.ACL.Commands["Capacity!"] = []string{"*"} }, "acl.commands[Capacity!]", []string{`"Capacity!"`}},
		{"unknown command", func(c *Config) { c.ACL.Commands["capacty"] = []string{"sysadmin-build"} }, "acl.commands[capacty]", []string{`"capacty"`, `did you mean "capacity"`, "connections kill"}},
		{"rule naming an unknown group", func(c *Config) { c.ACL.Commands["override"] = []string{"sysadmin-biuld"} }, "acl.commands[override][0]", []string{`"sysadmin-biuld"`, "sysadmin-build, sysadmin-main"}},
		{"rule with a bad group", func(c *Config) { c.ACL.Commands["override"] = []string{"@everyone"} }, "acl.commands[override][0]", []string{`"@everyone"`, `"@identified"`}},
		{"dsn empty", func(c *Config) { c.Koji.DB.DSN = "" }, "koji.db.dsn", []string{"empty", "dsn_file"}},
		{"state dsn unparseable", func(c *Config) { c.State.DSN = "postgres://kojibot:hunter2@db:notaport/kojibot" }, "state.dsn", []string{"cannot be parsed", "postgres://kojibot@db/kojibot"}},
		{"state dsn blank", func(c *Config) { c.State.DSN = "  " }, "state.dsn", []string{"blank", "state.dir"}},
		{"db_user", func(c *Config) { c.Koji.DBUser = "" }, "koji.db_user", []string{`""`}},
		{"override_tag", func(c *Config) { c.Koji.OverrideTag = "dist-override" }, "koji.override_tag", []string{`"dist-override"`, "{release}"}},
		{"admin_host", func(c *Config) { c.Koji.AdminHost = "koji-adm" }, "koji.admin_host", []string{`"koji-adm"`, "koji-admin, koji-hub"}},
		{"hubs", func(c *Config) { c.Koji.Hubs = append(c.Koji.Hubs, "hub2") }, "koji.hubs[1]", []string{`"hub2"`, "hosts entry"}},
		{"reconnect_grace", func(c *Config) { c.Koji.ReconnectGrace = 0 }, "koji.reconnect_grace", []string{"0s"}},
		{"db_timezone unknown", func(c *Config) { c.Koji.DBTimezone = "Mars/Olympus_Mons" }, "koji.db_timezone", []string{`"Mars/Olympus_Mons"`, "IANA"}},
		{"db_timezone Local", func(c *Config) { c.Koji.DBTimezone = "Local" }, "koji.db_timezone", []string{`"Local"`}},
		{"host address without port", func(c *Config) { c.Hosts["xen4"] = Host{Address: "xen4.example.org"} }, "hosts[xen4].address", []string{`"xen4.example.org"`, "host:port"}},
		{"host address bad port", func(c *Config) { c.Hosts["xen4"] = Host{Address: "xen4:ssh"} }, "hosts[xen4].address", []string{`"xen4:ssh"`}},
		{"host address missing", func(c *Config) { c.Hosts["xen4"] = Host{} }, "hosts[xen4].address", []string{`""`}},
		{"host service", func(c *Config) { c.Hosts["xen4"] = Host{Address: "x:22", Services: []string{"kojid; rm -rf /"}} }, "hosts[xen4].services[0]", []string{`"kojid; rm -rf /"`}},
		{"host name", func(c *Config) { c.Hosts["bad host"] = Host{Address: "x:22"} }, "hosts[bad host]", []string{`"bad host"`}},
		{"xen guest's host", func(c *Config) { c.Xen.Guests["xenbuilder1"] = "xen3" }, "xen.guests[xenbuilder1]", []string{`"xen3"`, `"disabled"`}},
		{"xen config_dir", func(c *Config) { c.Xen.ConfigDir = "etc/xen" }, "xen.config_dir", []string{`"etc/xen"`, "absolute"}},
		{"reboot_command", func(c *Config) { c.Xen.RebootCommand = "xl reboot" }, "xen.reboot_command", []string{`"xl reboot"`, "{guest}"}},
		{"jump_host", func(c *Config) { c.SSH.JumpHost = "bastion" }, "ssh.jump_host", []string{`"bastion"`, "host:port"}},
		{"parallel", func(c *Config) { c.SSH.Parallel = 0 }, "ssh.parallel", []string{"0", "at least 1"}},
		{"service_command without {action}", func(c *Config) { c.SSH.ServiceCommand = "systemctl restart {service}" }, "ssh.service_command", []string{"{action}"}},
		{"service_command without {service}", func(c *Config) { c.SSH.ServiceCommand = "systemctl {action} kojid" }, "ssh.service_command", []string{"{service}"}},
		{"connect_timeout", func(c *Config) { c.SSH.ConnectTimeout = 0 }, "ssh.connect_timeout", []string{"0s"}},
		{"helper relative", func(c *Config) { c.SSH.Helper = "sudo -n kojibot-helper" }, "ssh.helper", []string{`"sudo -n kojibot-helper"`, "absolute path"}},
		{"helper shell syntax", func(c *Config) { c.SSH.Helper = "sudo -n /usr/local/sbin/kojibot-helper;id" }, "ssh.helper", []string{"shell syntax"}},
		{"helper shell syntax before", func(c *Config) { c.SSH.Helper = "$(id) /usr/local/sbin/kojibot-helper" }, "ssh.helper", []string{"shell syntax", `"$(id)"`}},
		{"full_percent 0", func(c *Config) { c.Disk.FullPercent = 0 }, "disk.full_percent", []string{"0", "at most 100"}},
		{"full_percent 101", func(c *Config) { c.Disk.FullPercent = 101 }, "disk.full_percent", []string{"101"}},
		{"predict_within negative", func(c *Config) { c.Disk.PredictWithin = -time.Hour }, "disk.predict_within", []string{"-1h0m0s", "0 to turn"}},
		{"shared_from", func(c *Config) { c.Disk.SharedFrom = "nfs" }, "disk.shared_from", []string{`"nfs"`}},
		{"shared_mounts without shared_from", func(c *Config) { c.Disk.SharedFrom = "" }, "disk.shared_from", []string{"disk.shared_mounts"}},
		{"shared mount relative", func(c *Config) { c.Disk.SharedMounts = []string{"mnt/koji"} }, "disk.shared_mounts[0]", []string{`"mnt/koji"`}},
		{"cleanup dir /", func(c *Config) { c.Cleanup.Dirs = []string{"/var/lib/mock", "/"} }, "cleanup.dirs[1]", []string{`"/"`, "root"}},
		{"cleanup dir //", func(c *Config) { c.Cleanup.Dirs = []string{"//"} }, "cleanup.dirs[0]", []string{`"//"`, "root"}},
		{"cleanup dir relative", func(c *Config) { c.Cleanup.Dirs = []string{"mock"} }, "cleanup.dirs[0]", []string{`"mock"`, "absolute"}},
		{"cleanup dir with ..", func(c *Config) { c.Cleanup.Dirs = []string{"/var/lib/mock/../.."} }, "cleanup.dirs[0]", []string{`"/var/lib/mock/../.."`}},
		{"min_age", func(c *Config) { c.Cleanup.MinAge = 0 }, "cleanup.min_age", []string{"0s"}},
		{"watch interval", func(c *Config) { c.Watch.Interval = 0 }, "watch.interval", []string{"0s"}},
		{"stale_after", func(c *Config) { c.Watch.StaleAfter = -time.Minute }, "watch.stale_after", []string{"-1m0s"}},
		{"repeat", func(c *Config) { c.Watch.Repeat = 0 }, "watch.repeat", []string{"0s"}},
		{"connections_percent", func(c *Config) { c.Watch.ConnectionsPercent = 150 }, "watch.connections_percent", []string{"150"}},
		{"confirm ttl", func(c *Config) { c.Confirm.TTL = 0 }, "confirm.ttl", []string{"0s"}},
		{"outage to", func(c *Config) { c.Outage.To = []string{"not an address"} }, "outage.to[0]", []string{`"not an address"`}},
		{"outage to empty", func(c *Config) { c.Outage.To = nil }, "outage.to", []string{"empty"}},
		{"http listen", func(c *Config) { c.HTTP.Listen = "localhost" }, "http.listen", []string{`"localhost"`, "host:port"}},
		{"http listen port", func(c *Config) { c.HTTP.Listen = "127.0.0.1:99999" }, "http.listen", []string{`"127.0.0.1:99999"`}},
		{"public_url", func(c *Config) { c.HTTP.PublicURL = "kojibot.example.org" }, "http.public_url", []string{`"kojibot.example.org"`, "URL"}},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level", []string{`"verbose"`, "debug, info, warn or error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.break_(c)
			err := c.ValidateWith(knownCommands)
			kes := keyErrors(t, err)
			if len(kes) != 1 {
				t.Fatalf("want exactly one problem, got %d: %v", len(kes), err)
			}
			if kes[0].Key != tt.key {
				t.Errorf("named %q, want %q (%v)", kes[0].Key, tt.key, err)
			}
			for _, s := range tt.says {
				if !strings.Contains(kes[0].Problem, s) {
					t.Errorf("%q does not say %q", kes[0].Error(), s)
				}
			}
			if !strings.Contains(kes[0].Problem, "expected") && !strings.Contains(kes[0].Problem, "empty") {
				t.Errorf("%q does not say what is expected", kes[0].Error())
			}
			assertNoSecret(t, "Validate error", err.Error())
		})
	}
}

// TestValidateFASJSONOnLoopback: plain http is accepted for FASJSON on this
// machine only (the test and demo stand-ins); https anywhere.
func TestValidateFASJSONOnLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:1234/", "http://[::1]:80", "http://127.9.9.9",
		"http://fasjson.localhost", "https://fasjson.example.org", "https://10.0.0.5/fasjson"} {
		c := validConfig()
		c.ACL.Source, c.ACL.FASJSONURL = "fasjson", u
		if err := c.ValidateWith(knownCommands); err != nil {
			t.Errorf("acl.fasjson_url %q: %v", u, err)
		}
	}
}

// TestLoopbackHost tells this machine from other hosts by the name's form.
func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "a.localhost": true, "127.0.0.1": true, "127.255.0.9": true,
		"::1": true, "::ffff:127.0.0.1": true,
		"": false, "localhost.example.org": false, "127.0.0.1.nip.io": false, "10.0.0.1": false, "::": false,
		"0.0.0.0": false, "fasjson.fedoraproject.org": false, "mylocalhost": false,
	} {
		if got := LoopbackHost(host); got != want {
			t.Errorf("LoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestValidateDBTimezone accepts IANA zone names and the empty default.
func TestValidateDBTimezone(t *testing.T) {
	for _, zone := range []string{"", "UTC", "Asia/Tokyo", "America/New_York"} {
		c := validConfig()
		c.Koji.DBTimezone = zone
		if err := c.ValidateWith(knownCommands); err != nil {
			t.Errorf("koji.db_timezone %q: %v", zone, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig()
	c.IRC.Port = 0
	c.IRC.Channels = []string{"nohash"}
	c.ACL.Source = "ldap"
	c.Koji.OverrideTag = "dist-override"
	c.Hosts["xen4"] = Host{Address: "xen4"}
	c.Cleanup.Dirs = []string{"/"}
	c.Watch.Interval = 0
	c.HTTP.PublicURL = "nope"
	err := c.ValidateWith(knownCommands)
	want := []string{
		"irc.port", "irc.channels[0]", "irc.notify_channel", "acl.source",
		"koji.override_tag", "hosts[xen4].address", "cleanup.dirs[0]",
		"watch.interval", "http.public_url",
	}
	got := errorKeys(t, err)
	if !slices.Equal(got, want) {
		t.Errorf("named %q\nwant  %q", got, want)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want) {
		t.Errorf("error has %d lines, want one per problem:\n%v", n, err)
	}
}

func TestValidateCommandNames(t *testing.T) {
	c := validConfig()
	c.ACL.Commands["restart master"] = []string{"sysadmin-main"}
	c.ACL.Commands["frobnicate"] = []string{"*"}

	// Without a catalogue only the form is checked.
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// With one, a name it does not hold is an error, subcommands included.
	got := errorKeys(t, c.ValidateWith(knownCommands))
	want := []string{"acl.commands[frobnicate]", "acl.commands[restart master]"}
	if !slices.Equal(got, want) {
		t.Errorf("named %q, want %q", got, want)
	}
	if err := c.ValidateWith(append(slices.Clone(knownCommands), "restart master", "frobnicate")); err != nil {
		t.Errorf("ValidateWith the full catalogue: %v", err)
	}
}

func TestValidateFASJSONNeedsNoStaticGroups(t *testing.T) {
	c := validConfig()
	c.ACL.Source = "fasjson"
	c.ACL.Groups = nil
	if err := c.ValidateWith(knownCommands); err != nil {
		t.Errorf("fasjson source with rules naming FAS groups: %v", err)
	}
	c.ACL.Source = "static"
	keys := errorKeys(t, c.ValidateWith(knownCommands))
	want := []string{"acl.commands[capacity][0]", "acl.commands[connections kill][0]"}
	if !slices.Equal(keys, want) {
		t.Errorf("static source without groups named %q, want %q", keys, want)
	}
}

func TestNotifyChannelDefaultsToFirstChannel(t *testing.T) {
	c := validConfig()
	c.IRC.NotifyChannel = ""
	c.normalize()
	if c.IRC.NotifyChannel != "#fedora-admin" {
		t.Errorf("notify_channel = %q, want the first channel", c.IRC.NotifyChannel)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

// TestPublicListenNeedsPublicURL: an http.listen address other machines
// can reach is refused without http.public_url; a loopback one is not.
func TestPublicListenNeedsPublicURL(t *testing.T) {
	for _, tt := range []struct {
		listen, publicURL string
		refused           bool
	}{
		{"127.0.0.1:9090", "", false},
		{"[::1]:9090", "", false},
		{"localhost:9090", "", false},
		{"127.0.0.2:9090", "", false},
		{"0.0.0.0:9090", "", true},
		{":9090", "", true},
		{"[::]:9090", "", true},
		{"192.0.2.10:9090", "", true},
		{"kojibot.example.org:9090", "", true},
		{"0.0.0.0:9090", "https://kojibot.example.org", false},
		{":9090", "https://kojibot.example.org/", false},
		{"", "", false},
	} {
		c := validConfig()
		c.HTTP.Listen, c.HTTP.PublicURL = tt.listen, tt.publicURL
		err := c.Validate()
		if !tt.refused {
			if err != nil {
				t.Errorf("listen %q, public_url %q refused: %v", tt.listen, tt.publicURL, err)
			}
			continue
		}
		kes := keyErrors(t, err)
		if len(kes) != 1 || kes[0].Key != "http.public_url" || !strings.Contains(kes[0].Problem, tt.listen) ||
			!strings.Contains(kes[0].Problem, "loopback") {
			t.Errorf("listen %q without public_url: %v; want one problem naming http.public_url, the address and loopback", tt.listen, err)
		}
	}
}
