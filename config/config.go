// Package config holds kojibot's typed configuration: the YAML file of
// docs/configuration.md, overridden by KOJIBOT_* environment variables and *_file
// secrets, loaded with viper and validated so that every bad or unknown key
// is named.
package config

import (
	"log/slog"
	"time"
)

// Secret is a string that never prints itself: fmt, slog and JSON show
// "[redacted]" so a password cannot reach a log line or a reply.
type Secret string

// String implements fmt.Stringer and hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString implements fmt.GoStringer and hides the value.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer and hides the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler and hides the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret's value, for the one place that must send it.
func (s Secret) Reveal() string { return string(s) }

// DefaultPath is where kojibot looks for its configuration file when
// --config is not given.
const DefaultPath = "/etc/kojibot/kojibot.yaml"

// Config is the whole configuration. Load fills it from defaults, the YAML
// file, the environment and *_file secrets; Validate (or ValidateWith) checks
// it. Map keys (hosts, acl.*, xen.guests) are lower-case after Load.
type Config struct {
	IRC     IRC             `mapstructure:"irc"`
	Matrix  Matrix          `mapstructure:"matrix"` // on when matrix.user_id is set
	ACL     ACL             `mapstructure:"acl"`
	Koji    Koji            `mapstructure:"koji"`
	SSH     SSH             `mapstructure:"ssh"`
	Hosts   map[string]Host `mapstructure:"hosts"`
	Xen     Xen             `mapstructure:"xen"`
	Disk    Disk            `mapstructure:"disk"`
	Cleanup Cleanup         `mapstructure:"cleanup"`
	Watch   Watch           `mapstructure:"watch"`
	Confirm Confirm         `mapstructure:"confirm"`
	Outage  Outage          `mapstructure:"outage"`
	HTTP    HTTP            `mapstructure:"http"`
	Log     Log             `mapstructure:"log"`
	// State is where the bot keeps its own state (journal, jobs).
	State State `mapstructure:"state"`
	// Commands holds the limits of commands that are not jobs.
	Commands Commands `mapstructure:"commands"`
	// ShutdownTimeout bounds how long SIGTERM may take: jobs are cancelled
	// and restore what they stopped within it (under systemd's 90 s).
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// Messaging is where the bot announces what it changes: Fedora's
	// message bus (fedora-messaging, AMQP).
	Messaging Messaging `mapstructure:"messaging"`
}

// Messaging is the messaging: section: the AMQP broker the bot publishes
// its changes, alerts and outage drafts to, in fedora-messaging's format.
type Messaging struct {
	// URL (messaging.url) is the broker, amqps://host[:port]/vhost;
	// empty: nothing is published.
	URL string `mapstructure:"url"`
	// TopicPrefix starts every routing key: <prefix>.kojibot.<what>.
	TopicPrefix string `mapstructure:"topic_prefix"`
	// CAFile is the CA bundle that signed the broker's certificate; empty:
	// the system's.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile are the bot's TLS client certificate and its
	// key (PEM): the broker logs the bot in by it (SASL EXTERNAL).
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// Exchange is the exchange published to.
	Exchange string `mapstructure:"exchange"`
	// QueueLimit bounds the messages that wait in the state store while
	// the broker is away; past it the oldest are dropped.
	QueueLimit int `mapstructure:"queue_limit"`
}

// State is the state: section.
type State struct {
	// Dir holds the embedded store, shared by run and exec; created 0700.
	// Unused when DSN is set.
	Dir string `mapstructure:"dir"`
	// DSN (state.dsn), when set, puts the store in that PostgreSQL
	// database, kojibot's own (never Koji's), instead of Dir. It may hold
	// a password: a secret.
	DSN Secret `mapstructure:"dsn"`
	// DSNFile (state.dsn_file) names a file whose content, less its
	// trailing newline, Load puts in DSN. Giving both is an error.
	DSNFile string `mapstructure:"dsn_file"`
}

// Commands is the commands: section.
type Commands struct {
	// Timeout is the deadline of a command that is not a job.
	Timeout time.Duration `mapstructure:"timeout"`
	// UserRate and UserBurst limit the commands one caller may send, on
	// every transport: a token bucket of UserBurst refilled at UserRate a
	// second.
	UserRate  float64 `mapstructure:"user_rate"`
	UserBurst int     `mapstructure:"user_burst"`
}

// IRC is the irc: section: the network, the bot's identity and its manners.
type IRC struct {
	Server        string   `mapstructure:"server"`
	Port          int      `mapstructure:"port"`
	TLS           bool     `mapstructure:"tls"`
	TLSSkipVerify bool     `mapstructure:"tls_skip_verify"`
	Nick          string   `mapstructure:"nick"`
	SASL          SASL     `mapstructure:"sasl"`
	Channels      []string `mapstructure:"channels"`
	NotifyChannel string   `mapstructure:"notify_channel"`
	CommandPrefix string   `mapstructure:"command_prefix"`
	MaxLines      int      `mapstructure:"max_lines"`
	// LineBytes is the most bytes of text put in one PRIVMSG/NOTICE.
	LineBytes int `mapstructure:"line_bytes"`
	// SendRate is the steady outbound rate in lines per second; SendBurst the
	// lines allowed at once. Defaults fit InspIRCd's and Libera's flood limits.
	SendRate  float64 `mapstructure:"send_rate"`
	SendBurst int     `mapstructure:"send_burst"`
	// WhoisTimeout bounds the WHOIS 330 lookup when the account tag is absent.
	WhoisTimeout time.Duration `mapstructure:"whois_timeout"`
	// ReconnectMax caps the reconnect backoff.
	ReconnectMax time.Duration `mapstructure:"reconnect_max"`
	// Workers is how many commands run at once.
	Workers int `mapstructure:"workers"`
}

// SASL holds the bot's services credentials. With User empty the bot does
// not authenticate.
type SASL struct {
	User     string `mapstructure:"user"`
	Password Secret `mapstructure:"password"`
	// PasswordFile (irc.sasl.password_file) names a file whose content, less
	// its trailing newline, Load puts in Password. Giving both is an error.
	PasswordFile string `mapstructure:"password_file"`
}

// Matrix is the matrix: section: the bot's Matrix account,
// its rooms and its manners. Matrix is off while UserID is empty.
type Matrix struct {
	// Homeserver is the client-server API base URL; empty: discovered from
	// the server of UserID (.well-known).
	Homeserver string `mapstructure:"homeserver"`
	// UserID is the bot's Matrix id, "@kojibot:fedora.im".
	UserID string `mapstructure:"user_id"`
	// AccessToken is the bot's access token (usually from access_token_file).
	AccessToken Secret `mapstructure:"access_token"`
	// AccessTokenFile (matrix.access_token_file) names a file whose content
	// Load puts in AccessToken.
	AccessTokenFile string `mapstructure:"access_token_file"`
	// Password logs in when no access token is given; the token it yields
	// is kept in the state store.
	Password Secret `mapstructure:"password"`
	// PasswordFile (matrix.password_file) names a file whose content Load
	// puts in Password.
	PasswordFile string `mapstructure:"password_file"`
	// Rooms are the aliases or room ids the bot joins and serves.
	Rooms []string `mapstructure:"rooms"`
	// NotifyRoom is where notifications go; defaults to the first room.
	NotifyRoom    string `mapstructure:"notify_room"`
	CommandPrefix string `mapstructure:"command_prefix"`
	// FASServer is the homeserver whose users are FAS users by localpart.
	FASServer string `mapstructure:"fas_server"`
	// MaxLines is the most lines of one reply; longer goes behind the link.
	MaxLines int `mapstructure:"max_lines"`
	// MaxDelay is how long before its receipt a command may have been sent
	// (its origin_server_ts) and still be run; an older one is answered
	// "not run".
	MaxDelay time.Duration `mapstructure:"max_delay"`
}

// Enabled reports whether the matrix: section configures a bot.
func (m Matrix) Enabled() bool { return m.UserID != "" }

// IRCEnabled reports whether the irc: section configures a bot (irc.server
// is set).
func (c *Config) IRCEnabled() bool { return c.IRC.Server != "" }

// ACL is the acl: section.
type ACL struct {
	Source           string        `mapstructure:"source"` // static | fasjson
	FASJSONURL       string        `mapstructure:"fasjson_url"`
	CacheTTL         time.Duration `mapstructure:"cache_ttl"`
	Timeout          time.Duration `mapstructure:"timeout"`
	AccountIsFASUser bool          `mapstructure:"account_is_fas_user"`
	Network          string        `mapstructure:"network"` // IRC network name used in FAS ircnicks URLs
	// Keytab (acl.keytab) is the bot's Kerberos keytab; when set, FASJSON
	// requests carry SPNEGO. Only with acl.source: fasjson.
	Keytab string `mapstructure:"keytab"`
	// Principal (acl.principal) is the bot's principal, "name@REALM";
	// empty means the keytab's first.
	Principal string `mapstructure:"principal"`
	// Krb5Conf (acl.krb5_conf) is the Kerberos configuration file.
	Krb5Conf string `mapstructure:"krb5_conf"`
	// Accounts maps a services account to a FAS username. Load lower-cases
	// the accounts (viper folds keys), so look them up lower-cased.
	Accounts map[string]string `mapstructure:"accounts"`
	// Groups maps a FAS group to its members, for the static source.
	Groups map[string][]string `mapstructure:"groups"`
	// Commands maps a command name, or "command subcommand", to the groups
	// that may run it; "*" is anyone, "@identified" anyone logged in.
	Commands map[string][]string `mapstructure:"commands"`
}

// Koji is the koji: section.
type Koji struct {
	// Hub (koji.hub) is the hub's API, kojibot's way into Koji when
	// koji.hub.url is set.
	Hub KojiHub `mapstructure:"hub"`
	// WebURL (koji.weburl) is the hub's web UI, e.g.
	// https://koji.fedoraproject.org/koji, for links to tasks and hosts in
	// replies; empty means no links.
	WebURL         string        `mapstructure:"weburl"`
	DB             KojiDB        `mapstructure:"db"`
	DBUser         string        `mapstructure:"db_user"`
	User           string        `mapstructure:"user"`
	OverrideTag    string        `mapstructure:"override_tag"`
	AdminHost      string        `mapstructure:"admin_host"`
	Hubs           []string      `mapstructure:"hubs"`
	ReconnectGrace time.Duration `mapstructure:"reconnect_grace"`
	Command        string        `mapstructure:"command"` // the koji CLI on the admin host
	// DBTimezone (koji.db_timezone) is the IANA zone the hub writes its
	// TIMESTAMP WITHOUT TIME ZONE columns in (sessions.update_time until
	// Koji 1.21). Empty, the default, means the database's default zone
	// (its own setting, else the server's), never one that only the bot's
	// session has (the DSN, PGTZ, the bot's role's setting).
	DBTimezone string `mapstructure:"db_timezone"`
}

// KojiHub is the koji.hub section: how the bot logs in to the hub's
// XML-RPC API.
type KojiHub struct {
	// URL (koji.hub.url) is the hub's XML-RPC endpoint, e.g.
	// https://koji.fedoraproject.org/kojihub; empty: hosts are read and
	// written through koji.db.
	URL string `mapstructure:"url"`
	// CAFile (koji.hub.ca_file) is the CA bundle for the hub's TLS; empty
	// means the system's.
	CAFile string `mapstructure:"ca_file"`
	// Auth (koji.hub.auth) is "kerberos" or "certificate".
	Auth string `mapstructure:"auth"`
	// Principal (koji.hub.principal) is the bot's Kerberos principal;
	// empty means the keytab's first.
	Principal string `mapstructure:"principal"`
	// Keytab (koji.hub.keytab) is the keytab of Principal (a systemd
	// credential name when relative, as acl.keytab).
	Keytab string `mapstructure:"keytab"`
	// CertFile (koji.hub.cert_file) is a PEM file with the client
	// certificate and its key, for auth: certificate.
	CertFile string `mapstructure:"cert_file"`
	// ActAsCaller (koji.hub.act_as_caller) logs in with proxyuser = the
	// caller's FAS user, so that Koji checks and records the caller; the
	// hub's ProxyPrincipals (or ProxyDNs) must list the bot.
	ActAsCaller bool `mapstructure:"act_as_caller"`
}

// KojiDB holds the database connection string, a secret because it may carry a password.
type KojiDB struct {
	DSN Secret `mapstructure:"dsn"`
	// DSNFile (koji.db.dsn_file) names a file whose content, less its
	// trailing newline, Load puts in DSN. Giving both is an error.
	DSNFile string `mapstructure:"dsn_file"`
}

// SSH is the ssh: section.
type SSH struct {
	User           string        `mapstructure:"user"`
	KeyFile        string        `mapstructure:"key_file"`
	KnownHosts     string        `mapstructure:"known_hosts"`
	JumpHost       string        `mapstructure:"jump_host"`
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	CommandTimeout time.Duration `mapstructure:"command_timeout"`
	Parallel       int           `mapstructure:"parallel"`
	// Helper (ssh.helper) is the command, split into words, that runs every
	// privileged step on a machine: `HELPER service ACTION SERVICE`, `du`,
	// `umount`, `rm`, `xen-memory`, `xl-reboot`, `reboot`
	// (contrib/kojibot-helper behind `sudo -n`). When it is set,
	// ServiceCommand, RebootCommand and xen.reboot_command are not used.
	// Empty (the default) runs those commands, umount, rm and the xen
	// config edit directly, for sites that log in as root or keep their
	// own sudo rules.
	Helper         string `mapstructure:"helper"`
	ServiceCommand string `mapstructure:"service_command"`
	// RebootCommand reboots a builder that has no xen host, over SSH.
	RebootCommand string `mapstructure:"reboot_command"`
	// RebootWait bounds how long reboot waits for SSH to come back.
	RebootWait time.Duration `mapstructure:"reboot_wait"`
	MaxOutput  int           `mapstructure:"max_output"`
}

// Host is one machine the bot reaches over SSH.
type Host struct {
	Address  string   `mapstructure:"address"`
	Services []string `mapstructure:"services"`
}

// Xen is the xen: section.
type Xen struct {
	Guests        map[string]string `mapstructure:"guests"`
	ConfigDir     string            `mapstructure:"config_dir"`
	RebootCommand string            `mapstructure:"reboot_command"`
}

// Disk is the disk: section.
type Disk struct {
	FullPercent  float64  `mapstructure:"full_percent"`
	SharedMounts []string `mapstructure:"shared_mounts"`
	SharedFrom   string   `mapstructure:"shared_from"`
	Escalate     []string `mapstructure:"escalate"`
	Mounts       []string `mapstructure:"mounts"` // a builder's mounts; default cleanup.dirs
	// PredictWithin: a mount under FullPercent but predicted full within
	// this is announced as a warning; 0 turns the warning off.
	PredictWithin time.Duration `mapstructure:"predict_within"`
}

// Cleanup is the cleanup: section.
type Cleanup struct {
	Dirs   []string      `mapstructure:"dirs"`
	MinAge time.Duration `mapstructure:"min_age"`
}

// Watch is the watch: section.
type Watch struct {
	Interval           time.Duration `mapstructure:"interval"`
	StaleAfter         time.Duration `mapstructure:"stale_after"`
	Repeat             time.Duration `mapstructure:"repeat"`
	ConnectionsPercent float64       `mapstructure:"connections_percent"`
}

// Confirm is the confirm: section.
type Confirm struct {
	TTL time.Duration `mapstructure:"ttl"`
}

// Outage is the outage: section.
type Outage struct {
	To           []string `mapstructure:"to"`
	TemplateFile string   `mapstructure:"template_file"`
}

// HTTP is the http: section.
type HTTP struct {
	Listen    string `mapstructure:"listen"`
	PublicURL string `mapstructure:"public_url"`
	// StatusPage serves /status, the farm on one HTML page.
	StatusPage bool `mapstructure:"status_page"`
}

// Log is the log: section: where the audit and operational log goes.
type Log struct {
	Level string `mapstructure:"level"` // debug | info | warn | error
	File  string `mapstructure:"file"`  // "" = stderr
}
