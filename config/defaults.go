package config

import (
	"slices"
	"strings"
	"time"
)

// Default returns the configuration made of defaults only, as Load would
// return it for an empty file and environment. It is not valid as it stands:
// koji.db.dsn, at least, has no default.
func Default() *Config {
	c := defaults()
	c.normalize()
	return c
}

// defaults returns the documented default of every key, before the derived
// values (normalize) are filled in. Load registers these with viper, so a key
// left out of the file and the environment keeps the value given here.
func defaults() *Config {
	return &Config{
		IRC: IRC{
			Server:        "", // no default network: a transport runs only where configured
			Port:          6697,
			TLS:           true,
			Nick:          "kojibot",
			Channels:      []string{"#fedora-admin"},
			CommandPrefix: "!koji",
			MaxLines:      4,
			LineBytes:     350,
			SendRate:      1,
			SendBurst:     4,
			WhoisTimeout:  5 * time.Second,
			ReconnectMax:  2 * time.Minute,
			Workers:       8,
		},
		Matrix: Matrix{
			CommandPrefix: "!koji",
			FASServer:     "fedora.im",
			MaxLines:      30,
			MaxDelay:      2 * time.Minute,
		},
		ACL: ACL{
			Source:           "static",
			FASJSONURL:       "https://fasjson.fedoraproject.org",
			CacheTTL:         5 * time.Minute,
			Timeout:          5 * time.Second,
			AccountIsFASUser: false,
			Network:          "irc.libera.chat",
			Krb5Conf:         "/etc/krb5.conf",
		},
		Koji: Koji{
			Hub:            KojiHub{Auth: "kerberos"},
			DBUser:         "koji",
			User:           "kojibot",
			OverrideTag:    "dist-{release}-override",
			ReconnectGrace: 2 * time.Minute,
			Command:        "koji",
			DBTimezone:     "", // the database server's own timezone setting
		},
		SSH: SSH{
			User:           "kojibot",
			ConnectTimeout: 10 * time.Second,
			CommandTimeout: 10 * time.Minute,
			Parallel:       32,
			ServiceCommand: "sudo systemctl {action} {service}",
			RebootCommand:  "sudo systemctl reboot",
			RebootWait:     15 * time.Minute,
			MaxOutput:      1 << 20,
		},
		Xen: Xen{
			ConfigDir:     "/etc/xen",
			RebootCommand: "xl reboot {guest}",
		},
		Disk: Disk{
			FullPercent:   90,
			PredictWithin: 6 * time.Hour,
		},
		Cleanup: Cleanup{
			Dirs:   []string{"/var/lib/mock", "/mnt/build"},
			MinAge: 7 * 24 * time.Hour,
		},
		Watch: Watch{
			Interval:           5 * time.Minute,
			StaleAfter:         10 * time.Minute,
			Repeat:             6 * time.Hour,
			ConnectionsPercent: 80,
		},
		Confirm: Confirm{TTL: 5 * time.Minute},
		Outage: Outage{
			To: []string{
				"fedora-infrastructure-list@lists.fedoraproject.org",
				"fedora-devel-list@lists.fedoraproject.org",
			},
		},
		HTTP:            HTTP{Listen: "127.0.0.1:9090"},
		Log:             Log{Level: "info"},
		State:           State{Dir: "/var/lib/kojibot"},
		Messaging:       Messaging{TopicPrefix: "org.fedoraproject.prod", Exchange: "amq.topic", QueueLimit: 10000},
		Commands:        Commands{Timeout: 30 * time.Second, UserRate: 0.5, UserBurst: 5},
		ShutdownTimeout: 60 * time.Second,
	}
}

// normalize fills the values derived from other keys and folds host-name
// references to lower case, as viper folds the hosts keys they refer to:
//   - irc.notify_channel defaults to the first of irc.channels;
//   - disk.mounts (a builder's mounts) defaults to cleanup.dirs;
//   - koji.admin_host, koji.hubs, disk.shared_from and the xen.guests
//     values and keys are lower-cased.
func (c *Config) normalize() {
	if c.IRC.NotifyChannel == "" && len(c.IRC.Channels) > 0 {
		c.IRC.NotifyChannel = c.IRC.Channels[0]
	}
	if c.Matrix.NotifyRoom == "" && len(c.Matrix.Rooms) > 0 {
		c.Matrix.NotifyRoom = c.Matrix.Rooms[0]
	}
	if len(c.Disk.Mounts) == 0 && len(c.Cleanup.Dirs) > 0 {
		c.Disk.Mounts = slices.Clone(c.Cleanup.Dirs)
	}
	c.Koji.AdminHost = strings.ToLower(c.Koji.AdminHost)
	for i, h := range c.Koji.Hubs {
		c.Koji.Hubs[i] = strings.ToLower(h)
	}
	c.Disk.SharedFrom = strings.ToLower(c.Disk.SharedFrom)
	if c.Xen.Guests != nil {
		guests := make(map[string]string, len(c.Xen.Guests))
		for g, h := range c.Xen.Guests {
			guests[strings.ToLower(g)] = strings.ToLower(h)
		}
		c.Xen.Guests = guests
	}
}
