package config

import (
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// KeyError is one problem with one configuration key, as Load and Validate
// report it. Key is the key's full path as written in the file, with the
// entries of a map in brackets: "irc.port", "hosts[koji-hub].address",
// "acl.commands[capacity]". Problem says what is wrong with the value and
// what is expected; it never holds a secret's value. Line is the line of
// the configuration file that set the key, or 0 when the file did not (a
// default, the environment, or a check of the whole configuration).
type KeyError struct {
	Key     string
	Problem string
	Line    int
}

// Error implements error: "key: problem", after "line N: " when Line is
// known.
func (e *KeyError) Error() string {
	msg := e.Problem
	if e.Key != "" {
		msg = e.Key + ": " + msg
	}
	if e.Line > 0 {
		msg = "line " + strconv.Itoa(e.Line) + ": " + msg
	}
	return msg
}

// joinKeyErrors joins errs with errors.Join; nil when there are none.
func joinKeyErrors(errs []*KeyError) error {
	if len(errs) == 0 {
		return nil
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// Validate checks c without a command catalogue: as ValidateWith(nil), the
// keys of acl.commands are checked for their form only. `kojibot run` and
// `check-config` should call ValidateWith with the catalogue's names.
func (c *Config) Validate() error { return c.ValidateWith(nil) }

// ValidateWith checks every key of c and returns the errors.Join of one
// *KeyError per problem, or nil. knownCommands lists every name a rule of
// acl.commands may use: each command and each "command subcommand" that
// has its own permission (the commands package's catalogue supplies it,
// so that config does not import the commands it configures). A nil
// knownCommands skips that check.
func (c *Config) ValidateWith(knownCommands []string) error {
	v := &validator{}
	c.validateIRC(v)
	c.validateMatrix(v)
	c.validateACL(v, knownCommands)
	c.validateKoji(v)
	c.validateSSH(v)
	c.validateHosts(v)
	c.validateXen(v)
	c.validateDisk(v)
	c.validateCleanup(v)
	c.validateWatch(v)
	c.validateOutage(v)
	c.validateHTTP(v)
	c.validateCommands(v)
	c.validateState(v)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.addf("log.level", "%q is not a level; expected debug, info, warn or error", c.Log.Level)
	}
	return joinKeyErrors(v.errs)
}

// validator gathers the problems found.
type validator struct{ errs []*KeyError }

// addf records a problem with key.
func (v *validator) addf(key, format string, args ...any) {
	v.errs = append(v.errs, &KeyError{Key: key, Problem: fmt.Sprintf(format, args...)})
}

// positive checks that a duration is greater than zero.
func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.addf(key, "%s is not positive; expected a duration greater than zero such as \"5m\"", d)
	}
}

// atLeast checks that an integer is at least lo.
func (v *validator) atLeast(key string, n, lo int) {
	if n < lo {
		v.addf(key, "%d is too small; expected at least %d", n, lo)
	}
}

// percent checks that p is in (0, 100].
func (v *validator) percent(key string, p float64) {
	if !(p > 0 && p <= 100) {
		v.addf(key, "%g is out of range; expected a percentage greater than 0 and at most 100", p)
	}
}

// placeholders checks that a template names every one of want.
func (v *validator) placeholders(key, tmpl string, want ...string) {
	for _, w := range want {
		if !strings.Contains(tmpl, w) {
			v.addf(key, "%q lacks %s; expected a command such as %q", tmpl, w, exampleOf(key))
		}
	}
}

// exampleOf gives the default of a template key, for messages.
func exampleOf(key string) string {
	d := defaults()
	switch key {
	case "ssh.service_command":
		return d.SSH.ServiceCommand
	case "xen.reboot_command":
		return d.Xen.RebootCommand
	case "koji.override_tag":
		return d.Koji.OverrideTag
	}
	return ""
}

// absPath checks that p is a clean absolute path.
func (v *validator) absPath(key, p string) {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		v.addf(key, "%q is not a clean absolute path; expected e.g. \"/var/lib/mock\"", p)
	}
}

// hostRef checks that name, when set, is a hosts entry.
func (c *Config) hostRef(v *validator, key, name string) {
	if name == "" {
		return
	}
	if _, ok := c.Hosts[name]; !ok {
		v.addf(key, "%q is not a hosts entry; expected one of: %s", name, listOrNone(sortedKeys(c.Hosts)))
	}
}

// Name syntaxes.
var (
	// nickRE is an IRC nickname (RFC 2812, with a modern length limit).
	nickRE = regexp.MustCompile("^[A-Za-z\\[\\]\\\\`_^{|}][A-Za-z0-9\\[\\]\\\\`_^{|}-]{0,29}$")
	// channelRE is a channel name: # or &, then no space, comma, colon or BEL.
	channelRE = regexp.MustCompile("^[#&][^\\s,:\x07]{1,49}$")
	// accountRE is a services account name: nick characters.
	accountRE = nickRE
	// fasNameRE is a FAS username or group name.
	fasNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// commandRE is a command name or "command subcommand".
	commandRE = regexp.MustCompile(`^[a-z][a-z0-9-]*( [a-z][a-z0-9-]*)?$`)
	// hostNameRE is a hosts entry's name: a host name or its first label.
	hostNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,252}[A-Za-z0-9])?$`)
	// dbRoleRE is a PostgreSQL role name as the bot will compare it.
	dbRoleRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$-]{0,62}$`)
)

// Special members of an acl.commands rule.
const (
	anyone     = "*"
	identified = "@identified"
)

func (c *Config) validateIRC(v *validator) {
	irc := &c.IRC
	if irc.Server == "" && c.Matrix.Enabled() {
		return // Matrix only: the irc: section is not used
	}
	if irc.Server == "" {
		v.addf("irc.server", "is empty and matrix.user_id is too: no transport is configured; set irc.server (an IRC network such as \"irc.libera.chat\") or matrix.homeserver and matrix.user_id, or both")
	} else if strings.ContainsAny(irc.Server, " \t\r\n:/") {
		v.addf("irc.server", "%q is not a server name; expected a host name such as \"irc.libera.chat\"", irc.Server)
	}
	if irc.Port < 1 || irc.Port > 65535 {
		v.addf("irc.port", "%d is out of range; expected a port from 1 to 65535", irc.Port)
	}
	if !nickRE.MatchString(irc.Nick) {
		v.addf("irc.nick", "%q is not a valid nickname; expected a letter or one of []\\`_^{|} then up to 29 letters, digits, those or -", irc.Nick)
	}
	if irc.SASL.User != "" && irc.SASL.Password == "" {
		v.addf("irc.sasl.password", "is empty while irc.sasl.user is set; expected the password, or irc.sasl.password_file")
	}
	if irc.SASL.User != "" && !accountRE.MatchString(irc.SASL.User) {
		v.addf("irc.sasl.user", "%q is not a valid account name; expected nick characters, e.g. \"kojibot\"", irc.SASL.User)
	}
	seen := map[string]bool{}
	for i, ch := range irc.Channels {
		key := fmt.Sprintf("irc.channels[%d]", i)
		if !channelRE.MatchString(ch) {
			v.addf(key, "%q is not a channel name; expected # or & then no spaces, commas or colons, e.g. \"#fedora-admin\"", ch)
		}
		if seen[strings.ToLower(ch)] {
			v.addf(key, "%q is listed twice", ch)
		}
		seen[strings.ToLower(ch)] = true
	}
	if irc.NotifyChannel != "" && !slices.ContainsFunc(irc.Channels, func(ch string) bool { return strings.EqualFold(ch, irc.NotifyChannel) }) {
		v.addf("irc.notify_channel", "%q is not in irc.channels; expected one of: %s", irc.NotifyChannel, listOrNone(irc.Channels))
	}
	if irc.CommandPrefix == "" || strings.ContainsFunc(irc.CommandPrefix, isSpace) {
		v.addf("irc.command_prefix", "%q is not a prefix; expected a word without spaces such as \"!koji\"", irc.CommandPrefix)
	}
	v.atLeast("irc.max_lines", irc.MaxLines, 2)
	if irc.LineBytes < 64 || irc.LineBytes > 480 {
		v.addf("irc.line_bytes", "%d is out of range; expected 64 to 480 bytes (an IRC line is 512 with its prefix)", irc.LineBytes)
	}
	if !(irc.SendRate > 0) {
		v.addf("irc.send_rate", "%g is not positive; expected lines per second such as 1", irc.SendRate)
	}
	v.atLeast("irc.send_burst", irc.SendBurst, 1)
	v.positive("irc.whois_timeout", irc.WhoisTimeout)
	v.positive("irc.reconnect_max", irc.ReconnectMax)
	v.atLeast("irc.workers", irc.Workers, 1)
}

func (c *Config) validateCommands(v *validator) {
	v.positive("commands.timeout", c.Commands.Timeout)
	if !(c.Commands.UserRate > 0) {
		v.addf("commands.user_rate", "%g is not positive; expected commands per second such as 0.5", c.Commands.UserRate)
	}
	v.atLeast("commands.user_burst", c.Commands.UserBurst, 1)
}

func (c *Config) validateACL(v *validator, knownCommands []string) {
	acl := &c.ACL
	switch acl.Source {
	case "static":
	case "fasjson":
		if !isHTTPURL(acl.FASJSONURL) {
			v.addf("acl.fasjson_url", "%q is not an http(s) URL; expected e.g. \"https://fasjson.fedoraproject.org\"", acl.FASJSONURL)
		} else if u, _ := url.Parse(acl.FASJSONURL); !SecureOrLoopback(u) {
			v.addf("acl.fasjson_url", "%q is plain http to a host that is not loopback; expected https, e.g. \"https://fasjson.fedoraproject.org\" "+
				"(Kerberos does not authenticate the server: over http anyone on the path could answer for FASJSON)", acl.FASJSONURL)
		}
		if acl.Network == "" {
			v.addf("acl.network", "is empty; expected the IRC network FAS ircnicks name, e.g. \"irc.libera.chat\"")
		}
		if acl.AccountIsFASUser {
			v.addf("acl.account_is_fas_user", "is true with acl.source: fasjson; it is only for acl.source: static "+
				"on a network whose accounts are FAS accounts (with FASJSON, accounts are linked by acl.accounts "+
				"or by the FAS user's own ircnicks entry)")
		}
	default:
		v.addf("acl.source", "%q is not a source; expected static or fasjson", acl.Source)
	}
	if acl.AccountIsFASUser && acl.Source == "static" && PublicIRCNetwork(c.IRC.Server) {
		v.addf("acl.account_is_fas_user", "is true while irc.server %q is a public network where anyone can register "+
			"any free account name: whoever registers a FAS user's name there would get that user's rights; "+
			"set it to false and map accounts in acl.accounts, or use acl.source: fasjson", c.IRC.Server)
	}
	v.positive("acl.cache_ttl", acl.CacheTTL)
	v.positive("acl.timeout", acl.Timeout)
	c.validateKerberos(v)
	for _, account := range sortedKeys(acl.Accounts) {
		key := "acl.accounts[" + account + "]"
		if !accountRE.MatchString(account) && !ValidMatrixUserID(account) {
			v.addf(key, "%q is not a valid services account name or Matrix id; expected nick characters, e.g. \"alice\", or \"@alice:example.org\"", account)
		}
		if user := acl.Accounts[account]; !fasNameRE.MatchString(user) {
			v.addf(key, "%q is not a valid FAS username; expected e.g. \"alice\"", user)
		}
	}
	for _, group := range sortedKeys(acl.Groups) {
		key := "acl.groups[" + group + "]"
		if !fasNameRE.MatchString(group) {
			v.addf(key, "%q is not a valid FAS group name; expected e.g. \"sysadmin-build\"", group)
		}
		for i, user := range acl.Groups[group] {
			if !fasNameRE.MatchString(user) {
				v.addf(fmt.Sprintf("%s[%d]", key, i), "%q is not a valid FAS username; expected e.g. \"alice\"", user)
			}
		}
	}
	for _, cmd := range sortedKeys(acl.Commands) {
		key := "acl.commands[" + cmd + "]"
		switch {
		case !commandRE.MatchString(cmd):
			v.addf(key, "%q is not a command name; expected e.g. \"capacity\" or \"connections kill\"", cmd)
		case knownCommands != nil && !slices.Contains(knownCommands, cmd):
			msg := fmt.Sprintf("%q is not a command", cmd)
			if best := closest(cmd, knownCommands); best != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", best)
			}
			v.addf(key, "%s; expected one of: %s", msg, strings.Join(sorted(knownCommands), ", "))
		}
		for i, group := range acl.Commands[cmd] {
			gkey := fmt.Sprintf("%s[%d]", key, i)
			switch {
			case group == anyone || group == identified:
			case !fasNameRE.MatchString(group):
				v.addf(gkey, "%q is not a group; expected a FAS group name, %q or %q", group, anyone, identified)
			case acl.Source == "static" && !hasKey(acl.Groups, group):
				v.addf(gkey, "group %q is not in acl.groups, so no one could run %q; expected one of: %s", group, cmd, listOrNone(sortedKeys(acl.Groups)))
			}
		}
	}
}

func (c *Config) validateKoji(v *validator) {
	k := &c.Koji
	// With the hub's API (koji.hub.url) the database is needed only for
	// `connections` and the connections watch, which are then off.
	if strings.TrimSpace(k.DB.DSN.Reveal()) == "" && k.Hub.URL == "" {
		v.addf("koji.db.dsn", "is empty and koji.hub.url is empty; expected koji.hub.url (the hub's API, recommended) or a PostgreSQL connection string such as \"postgres://kojibot@db/koji\", or koji.db.dsn_file")
	}
	if !dbRoleRE.MatchString(k.DBUser) {
		v.addf("koji.db_user", "%q is not a database role name; expected the hub's role, e.g. \"koji\"", k.DBUser)
	}
	if strings.TrimSpace(k.User) == "" {
		v.addf("koji.user", "is empty; expected the Koji user recorded on changes, e.g. \"kojibot\"")
	}
	if !strings.Contains(k.OverrideTag, "{release}") {
		v.addf("koji.override_tag", "%q lacks {release}; expected e.g. %q", k.OverrideTag, exampleOf("koji.override_tag"))
	}
	c.hostRef(v, "koji.admin_host", k.AdminHost)
	for i, hub := range k.Hubs {
		key := fmt.Sprintf("koji.hubs[%d]", i)
		if hub == "" {
			v.addf(key, "is empty; expected a hosts entry")
			continue
		}
		c.hostRef(v, key, hub)
	}
	v.positive("koji.reconnect_grace", k.ReconnectGrace)
	if k.DBTimezone != "" && !validZone(k.DBTimezone) {
		v.addf("koji.db_timezone", "%q is not an IANA time zone name; expected e.g. \"UTC\" or \"America/New_York\", or empty for the database's own setting", k.DBTimezone)
	}
	if strings.TrimSpace(k.Command) == "" {
		v.addf("koji.command", "is empty; expected the koji CLI, e.g. \"koji\"")
	}
	c.validateKojiHub(v)
	c.validateMessaging(v)
}

func (c *Config) validateSSH(v *validator) {
	s := &c.SSH
	if strings.TrimSpace(s.User) == "" || strings.ContainsFunc(s.User, isSpace) {
		v.addf("ssh.user", "%q is not a user name; expected e.g. \"kojibot\"", s.User)
	}
	if s.JumpHost != "" {
		if err := checkHostPort(s.JumpHost, false); err != nil {
			v.addf("ssh.jump_host", "%q %v; expected host:port such as \"bastion.example.org:22\", or \"\"", s.JumpHost, err)
		}
	}
	v.positive("ssh.connect_timeout", s.ConnectTimeout)
	v.positive("ssh.command_timeout", s.CommandTimeout)
	v.atLeast("ssh.parallel", s.Parallel, 1)
	v.placeholders("ssh.service_command", s.ServiceCommand, "{action}", "{service}")
	if w := strings.Fields(s.Helper); len(w) > 0 {
		prog := w[len(w)-1]
		if !filepath.IsAbs(prog) || filepath.Clean(prog) != prog {
			v.addf("ssh.helper", "%q does not end with the helper's absolute path; expected e.g. \"sudo -n /usr/local/sbin/kojibot-helper\", or \"\"", s.Helper)
		}
		for _, word := range w {
			if strings.ContainsAny(word, "'\"`$;&|<>(){}*?[]\\") {
				v.addf("ssh.helper", "%q holds shell syntax (%q); expected plain words such as \"sudo -n /usr/local/sbin/kojibot-helper\"", s.Helper, word)
				break
			}
		}
	}
	v.atLeast("ssh.max_output", s.MaxOutput, 1024)
}

func (c *Config) validateHosts(v *validator) {
	for _, name := range sortedKeys(c.Hosts) {
		key := "hosts[" + name + "]"
		h := c.Hosts[name]
		if !hostNameRE.MatchString(name) {
			v.addf(key, "%q is not a host name; expected a Koji host name or its first label", name)
		}
		if err := checkHostPort(h.Address, false); err != nil {
			v.addf(key+".address", "%q %v; expected host:port such as \"builder.example.org:22\"", h.Address, err)
		}
		for i, svc := range h.Services {
			if !ValidServiceName(svc) {
				v.addf(fmt.Sprintf("%s.services[%d]", key, i), "%q is not a service name; expected a systemd unit such as \"kojid\" (letters, digits and @._- only, starting with a letter or digit)", svc)
			}
		}
	}
}

// disabled is the xen.guests value of a guest whose memory may not be edited.
const disabled = "disabled"

func (c *Config) validateXen(v *validator) {
	x := &c.Xen
	for _, guest := range sortedKeys(x.Guests) {
		key := "xen.guests[" + guest + "]"
		if !hostNameRE.MatchString(guest) {
			v.addf(key, "%q is not a host name; expected the guest's Koji host name or its first label", guest)
		}
		if xh := x.Guests[guest]; xh != disabled {
			if _, ok := c.Hosts[xh]; !ok {
				v.addf(key, "%q is not a hosts entry; expected the xen host's hosts entry or %q", xh, disabled)
			}
		}
	}
	v.absPath("xen.config_dir", x.ConfigDir)
	v.placeholders("xen.reboot_command", x.RebootCommand, "{guest}")
}

func (c *Config) validateDisk(v *validator) {
	d := &c.Disk
	v.percent("disk.full_percent", d.FullPercent)
	if d.PredictWithin < 0 {
		v.addf("disk.predict_within", "is %s; expected a duration, or 0 to turn the early warning off", d.PredictWithin)
	}
	for i, m := range d.SharedMounts {
		v.absPath(fmt.Sprintf("disk.shared_mounts[%d]", i), m)
	}
	for i, m := range d.Mounts {
		v.absPath(fmt.Sprintf("disk.mounts[%d]", i), m)
	}
	if len(d.SharedMounts) > 0 && d.SharedFrom == "" {
		v.addf("disk.shared_from", "is empty while disk.shared_mounts is set; expected the hosts entry whose df shows them")
	}
	c.hostRef(v, "disk.shared_from", d.SharedFrom)
	for i, e := range d.Escalate {
		if strings.TrimSpace(e) == "" {
			v.addf(fmt.Sprintf("disk.escalate[%d]", i), "is empty; expected a contact")
		}
	}
}

func (c *Config) validateCleanup(v *validator) {
	for i, dir := range c.Cleanup.Dirs {
		key := fmt.Sprintf("cleanup.dirs[%d]", i)
		if dir == "/" || filepath.Clean(dir) == "/" {
			v.addf(key, "%q is the root directory; expected a directory whose entries may be deleted, such as \"/var/lib/mock\"", dir)
			continue
		}
		v.absPath(key, dir)
	}
	v.positive("cleanup.min_age", c.Cleanup.MinAge)
}

func (c *Config) validateWatch(v *validator) {
	w := &c.Watch
	v.positive("watch.interval", w.Interval)
	v.positive("watch.stale_after", w.StaleAfter)
	v.positive("watch.repeat", w.Repeat)
	v.percent("watch.connections_percent", w.ConnectionsPercent)
	v.positive("confirm.ttl", c.Confirm.TTL)
}

func (c *Config) validateOutage(v *validator) {
	if len(c.Outage.To) == 0 {
		v.addf("outage.to", "is empty; expected the lists announcements go to")
	}
	for i, to := range c.Outage.To {
		if _, err := mail.ParseAddress(to); err != nil {
			v.addf(fmt.Sprintf("outage.to[%d]", i), "%q is not a mail address; expected e.g. \"fedora-devel-list@lists.fedoraproject.org\"", to)
		}
	}
}

func (c *Config) validateHTTP(v *validator) {
	if c.HTTP.Listen != "" {
		if err := checkHostPort(c.HTTP.Listen, true); err != nil {
			v.addf("http.listen", "%q %v; expected host:port such as \"127.0.0.1:9090\", or \"\" for no HTTP server", c.HTTP.Listen, err)
		}
	}
	if c.HTTP.Listen != "" && c.HTTP.PublicURL == "" && !IsLoopbackListen(c.HTTP.Listen) {
		v.addf("http.public_url", "required when http.listen (%q) is not a loopback address: "+
			"the links posted in the channel must name the address people reach", c.HTTP.Listen)
	}
	if c.HTTP.PublicURL != "" && !isHTTPURL(c.HTTP.PublicURL) {
		v.addf("http.public_url", "%q is not an http(s) URL; expected e.g. \"https://kojibot.example.org\", or \"\"", c.HTTP.PublicURL)
	}
}

// checkHostPort checks a host:port address; the host may be empty (all
// addresses) only when anyHost is true.
func checkHostPort(addr string, anyHost bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("is not host:port")
	}
	if host == "" && !anyHost {
		return errors.New("has no host")
	}
	if strings.ContainsFunc(host, isSpace) {
		return errors.New("has spaces in its host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("has no port from 1 to 65535")
	}
	return nil
}

// isHTTPURL reports whether s is an absolute http or https URL with a host.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// SecureOrLoopback reports whether u may carry identity questions and
// credentials: https to any host, plain http only to this machine
// (LoopbackHost).
func SecureOrLoopback(u *url.URL) bool {
	if u == nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return true
	case "http":
		return LoopbackHost(u.Hostname())
	}
	return false
}

// LoopbackHost reports whether host (a URL's host, without port or
// brackets) is this machine by its form alone, without asking DNS:
// "localhost", a name under ".localhost", or a loopback address (127/8,
// ::1).
func LoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// isSpace reports whether r is white space.
func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sorted returns a sorted copy of s.
func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// listOrNone joins names for a message, or says there are none.
func listOrNone(names []string) string {
	if len(names) == 0 {
		return "(none configured)"
	}
	return strings.Join(names, ", ")
}

// hasKey reports whether m has the key k.
func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

// validZone reports whether name is an IANA time zone name that both Go and
// PostgreSQL know ("Local" is Go's alone).
func validZone(name string) bool {
	if name == "Local" || strings.ContainsFunc(name, isSpace) {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}

// serviceNameRE is what a service (systemd unit) name may be, for the bot
// and for contrib/kojibot-helper alike: letters, digits and @._-, starting
// with a letter or a digit.
var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9@._-]{0,254}$`)

// ValidServiceName reports whether name may be a hosts entry's service:
// check-config accepts exactly the names that the fleet and the helper
// will run.
func ValidServiceName(name string) bool { return serviceNameRE.MatchString(name) }

// validateState checks state.dsn, when set: a PostgreSQL connection
// string or URL. The problem never quotes it (it may hold a password).
func (c *Config) validateState(v *validator) {
	dsn := strings.TrimSpace(c.State.DSN.Reveal())
	if dsn == "" {
		if c.State.DSN != "" {
			v.addf("state.dsn", "is blank; expected a PostgreSQL connection string, or leave it unset to keep the state in state.dir")
		}
		return
	}
	if _, err := pgx.ParseConfig(dsn); err != nil {
		v.addf("state.dsn", "cannot be parsed; expected a PostgreSQL connection string or URL, such as \"postgres://kojibot@db/kojibot\"")
	}
}
