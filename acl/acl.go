// Package acl decides who is asking and whether they may: services account
// to FAS user, FAS user to groups (static or FASJSON, cached), groups to the
// per-command policy. It fails closed.
package acl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedora-infra/kojibot/config"
)

// Caller identifies who sent a command.
type Caller struct {
	// Account is the IRC services account; "" when not logged in.
	Account string
	// FASUser, when not empty, is trusted as the FAS user (kojibot exec --as).
	FASUser string
	// Matrix says Account is a Matrix user id ("@alice:fedora.im") that the
	// homeserver authenticated, resolved by the Matrix rules
	// instead of the IRC ones.
	Matrix bool
}

// Decision is the outcome of Authorize, with what the audit log needs.
type Decision struct {
	Allowed  bool
	FASUser  string
	Rule     string   // the policy entry that decided, e.g. "acl.commands[capacity]"
	Required []string // the groups the rule asks for
	Reason   string   // why it was denied, fit for the caller
}

// The special members of an acl.commands list.
const (
	// Anyone lets everybody run the command, logged in or not.
	Anyone = "*"
	// Identified lets anybody identified run the command: on IRC anybody
	// logged in to services; on Matrix anybody whose Matrix id resolves
	// to a FAS user (matrix.fas_server, acl.accounts or a FASJSON link),
	// never a guest or a stranger on another homeserver.
	Identified = "@identified"
)

// The values of acl.source.
const (
	SourceStatic  = "static"
	SourceFASJSON = "fasjson"
)

// DefaultCacheSize bounds each cache (memberships, account mappings)
// when Options.CacheSize is 0.
const DefaultCacheSize = 4096

// FailureMemory is how long a FASJSON failure is remembered: requests in
// that time fail at once instead of each waiting acl.timeout, so that a
// dead FASJSON cannot tie up every worker.
const FailureMemory = 10 * time.Second

// Sentinel errors, matched with errors.Is.
var (
	// ErrUnavailable means FASJSON could not answer: down, slow, refusing our
	// credentials or answering nonsense. Authorize then denies (fail closed).
	ErrUnavailable = errors.New("FASJSON unavailable")
	// ErrUnknownGroup means the group does not exist (FASJSON 404, or not in
	// acl.groups for the static source).
	ErrUnknownGroup = errors.New("unknown group")
	// ErrNoFASUser means the services account maps to no single FAS user.
	ErrNoFASUser = errors.New("no FAS user")
)

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// ValidName reports whether s is a well-formed FAS user or group name,
// [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}, the only names put into a FASJSON URL.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Options are the Checker's collaborators; every field may be left zero.
type Options struct {
	// HTTPClient talks to FASJSON; nil uses a client with Go's default
	// transport. The Checker uses a copy that follows redirects only to
	// https, or to plain http on loopback.
	HTTPClient *http.Client
	// Authenticator adds credentials to each FASJSON request; nil is NoAuth.
	Authenticator Authenticator
	// Now is the clock of the cache; nil is time.Now.
	Now func() time.Time
	// Logger receives FASJSON failures and cache activity; nil discards.
	Logger *slog.Logger
	// CacheSize caps the entries of each cache (memberships, account
	// mappings); 0 is DefaultCacheSize.
	CacheSize int
	// MatrixFASServer is matrix.fas_server: the homeserver whose users are
	// FAS users by their localpart ("fedora.im"); "" trusts none.
	MatrixFASServer string
}

// rule is one resolved policy entry.
type rule struct {
	name       string   // for Decision.Rule
	required   []string // as configured, for Decision.Required
	groups     []string // the real groups in required
	anyone     bool
	identified bool
	deny       string // non-empty: refuse with this reason
}

// Checker answers Authorize from the acl: configuration. It is safe for
// concurrent use. Create it with New.
type Checker struct {
	source           string
	base             string // FASJSON base URL without the trailing slash
	timeout          time.Duration
	ttl              time.Duration // <= 0: no caching
	accountIsFASUser bool
	network          string
	matrixFASServer  string                     // matrix.fas_server, lower-case
	accounts         map[string]string          // services account as configured -> FAS user
	mappedTo         map[string]bool            // lower-case FAS users that acl.accounts names
	groups           map[string]map[string]bool // static: lower-case group -> lower-case users
	commands         map[string]rule            // normalised command key -> rule
	policyGroups     []string                   // every real group named in acl.commands

	client *http.Client
	auth   Authenticator
	now    func() time.Time
	log    *slog.Logger

	casemap atomic.Value // CaseMapping of the IRC network; rfc1459 until told

	mu        sync.Mutex
	downErr   error              // the last FASJSON failure, remembered until downUntil
	downUntil time.Time          //
	members   *ttlCache[bool]    // user "\x00" group -> member?
	mappings  *ttlCache[mapping] // folded account -> ircnicks search answer
}

// New checks cfg and builds a Checker. Every problem found is reported,
// joined, naming its acl.* key.
//
// cfg is a validated acl: section (config.Default holds the defaults): New
// fills in nothing. A cfg.CacheTTL of zero or less turns caching off.
func New(cfg config.ACL, opts Options) (*Checker, error) {
	c := &Checker{
		source:           strings.ToLower(strings.TrimSpace(cfg.Source)),
		timeout:          cfg.Timeout,
		ttl:              cfg.CacheTTL,
		accountIsFASUser: cfg.AccountIsFASUser,
		network:          strings.TrimSpace(cfg.Network),
		matrixFASServer:  strings.ToLower(strings.TrimSpace(opts.MatrixFASServer)),
		accounts:         map[string]string{},
		mappedTo:         map[string]bool{},
		groups:           map[string]map[string]bool{},
		commands:         map[string]rule{},
		client:           opts.HTTPClient,
		auth:             opts.Authenticator,
		now:              opts.Now,
		log:              opts.Logger,
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("acl: "+format, args...)) }

	switch c.source {
	case SourceStatic, SourceFASJSON:
	default:
		bad("acl.source: %q is neither %q nor %q", cfg.Source, SourceStatic, SourceFASJSON)
	}
	if c.source == SourceFASJSON {
		u, err := url.Parse(strings.TrimSpace(cfg.FASJSONURL))
		switch {
		case cfg.FASJSONURL == "":
			bad("acl.fasjson_url: required with acl.source: fasjson")
		case err != nil:
			bad("acl.fasjson_url: %v", err)
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad("acl.fasjson_url: %q is not an http(s) URL", cfg.FASJSONURL)
		case !config.SecureOrLoopback(u):
			bad("acl.fasjson_url: %q is plain http to a host that is not loopback; FASJSON must be https "+
				"(Kerberos does not authenticate the server)", cfg.FASJSONURL)
		case u.RawQuery != "" || u.Fragment != "":
			bad("acl.fasjson_url: %q must not have a query or fragment", cfg.FASJSONURL)
		default:
			c.base = strings.TrimRight(u.String(), "/")
		}
	}
	if c.timeout < 0 {
		bad("acl.timeout: %s is negative", c.timeout)
	}
	if c.accountIsFASUser && c.source != SourceStatic {
		bad("acl.account_is_fas_user: only with acl.source: static; with FASJSON an account is linked " +
			"by acl.accounts or by the FAS user's own ircnicks entry")
	}
	if strings.ContainsAny(c.network, "/ ") {
		bad("acl.network: %q is not a network host name", c.network)
	}

	for account, user := range cfg.Accounts {
		if strings.TrimSpace(account) == "" {
			bad("acl.accounts: empty services account")
			continue
		}
		if !ValidName(user) {
			bad("acl.accounts[%s]: %q is not a valid FAS username", account, user)
			continue
		}
		c.accounts[account] = user
		c.mappedTo[strings.ToLower(user)] = true
	}
	for group, users := range cfg.Groups {
		if !ValidName(group) {
			bad("acl.groups: %q is not a valid FAS group name", group)
			continue
		}
		set := map[string]bool{}
		for _, u := range users {
			if !ValidName(u) {
				bad("acl.groups[%s]: %q is not a valid FAS username", group, u)
				continue
			}
			set[strings.ToLower(u)] = true
		}
		c.groups[strings.ToLower(group)] = set
	}
	seen := map[string]bool{}
	for cmd, required := range cfg.Commands {
		key := normKey(cmd)
		if key == "" {
			bad("acl.commands: empty command name")
			continue
		}
		if _, dup := c.commands[key]; dup {
			bad("acl.commands[%s]: listed twice", cmd)
			continue
		}
		r := rule{name: "acl.commands[" + key + "]", required: slices.Clone(required)}
		for _, g := range required {
			switch {
			case g == Anyone:
				r.anyone = true
			case g == Identified:
				r.identified = true
			case strings.HasPrefix(g, "@"):
				bad("acl.commands[%s]: unknown special %q (only %q and %q exist)", cmd, g, Anyone, Identified)
			case !ValidName(g):
				bad("acl.commands[%s]: %q is not a valid FAS group name", cmd, g)
			default:
				r.groups = append(r.groups, g)
				if !seen[g] {
					seen[g] = true
					c.policyGroups = append(c.policyGroups, g)
				}
			}
		}
		if len(required) == 0 {
			r.deny = fmt.Sprintf("%s lists no group, so no one may run %q", r.name, key)
		}
		c.commands[key] = r
	}
	slices.Sort(c.policyGroups)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	// Redirects are followed only to where the base URL itself could be:
	// never from https (or loopback) to plain http elsewhere, which would
	// send the question, and Go's copy of the credentials, in the clear.
	client := &http.Client{}
	if c.client != nil {
		copied := *c.client
		client = &copied
	}
	next := client.CheckRedirect
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !config.SecureOrLoopback(req.URL) {
			return fmt.Errorf("redirect to %s://%s refused: not https", req.URL.Scheme, req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	c.client = client
	if c.auth == nil {
		c.auth = NoAuth{}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	size := opts.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	c.casemap.Store(CaseMappingRFC1459)
	c.members = newTTLCache[bool](size)
	c.mappings = newTTLCache[mapping](size)
	return c, nil
}

// normKey lower-cases a command key and collapses its white space, the form
// acl.commands keys are looked up in (viper lower-cases map keys).
func normKey(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// policy finds the rule for command: "cmd sub" first, then, for a
// read-only subcommand only, "cmd": a parent's entry never grants a
// subcommand that changes anything. Without an entry, read-only commands
// are @identified and the rest are refused.
func (c *Checker) policy(command string, readOnly bool) rule {
	key := normKey(command)
	for k := key; k != ""; {
		if r, ok := c.commands[k]; ok {
			return r
		}
		i := strings.LastIndexByte(k, ' ')
		if i < 0 || !readOnly {
			break
		}
		k = k[:i]
	}
	if readOnly {
		return rule{name: "default: read-only @identified", required: []string{Identified}, identified: true}
	}
	return rule{
		name: "default: deny",
		deny: fmt.Sprintf("there is no acl.commands entry for %q, and commands that change anything need one", key),
	}
}

// Authorize decides whether caller may run command, the catalogue key such
// as "capacity" or "connections kill"; readOnly says whether the command
// changes nothing, which decides the default for commands without an
// acl.commands entry. Every failure to find out denies.
func (c *Checker) Authorize(ctx context.Context, caller Caller, command string, readOnly bool) Decision {
	r := c.policy(command, readOnly)
	d := Decision{FASUser: caller.FASUser, Rule: r.name, Required: slices.Clone(r.required)}
	switch {
	case r.deny != "":
		d.Reason = r.deny
		return d
	case r.anyone:
		d.Allowed = true
		return d
	case caller.Account == "" && caller.FASUser == "":
		d.Reason = "you are not identified to services: identify to NickServ " +
			"(/msg NickServ IDENTIFY <account> <password>) and try again"
		return d
	case r.identified && !caller.Matrix:
		d.FASUser = c.knownUser(caller)
		d.Allowed = true
		return d
	}

	// On Matrix anyone can make an account (on a server of their own, or
	// as a guest), so there even @identified needs a FAS user.
	user, err := c.resolve(ctx, caller)
	if err != nil {
		d.Reason = err.Error()
		c.log.Info("acl: no FAS user", "account", caller.Account, "command", command, "err", err)
		return d
	}
	d.FASUser = user
	if r.identified {
		d.Allowed = true
		return d
	}

	var errs []error
	for _, g := range r.groups {
		ok, err := c.member(ctx, user, g)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			d.Allowed = true
			return d
		}
	}
	d.Reason = c.denyReason(normKey(command), user, r, errs)
	return d
}

// denyReason explains a refusal after the group checks: FASJSON failing
// wins (the answer is unknown), then the groups needed, then unknown groups.
func (c *Checker) denyReason(command, user string, r rule, errs []error) string {
	for _, err := range errs {
		if errors.Is(err, ErrUnavailable) {
			return err.Error() + "; refusing " + command + " until group membership can be checked"
		}
	}
	var unknown []string
	for _, err := range errs {
		var ug *unknownGroupError
		if errors.As(err, &ug) {
			unknown = append(unknown, ug.group)
		}
	}
	if len(unknown) == len(r.groups) && len(unknown) > 0 {
		return fmt.Sprintf("%s needs group %s, which %s (%s); ask an admin to fix it",
			command, strings.Join(unknown, ", "), c.missingWhere(), r.name)
	}
	need := "membership in FAS group " + r.groups[0]
	if len(r.groups) > 1 {
		need = "membership in one of the FAS groups " + strings.Join(r.groups, ", ")
	}
	reason := fmt.Sprintf("%s needs %s; FAS user %s is not a member", command, need, user)
	if len(unknown) > 0 {
		reason += fmt.Sprintf(" (group %s %s)", strings.Join(unknown, ", "), c.missingWhere())
	}
	return reason
}

func (c *Checker) missingWhere() string {
	if c.source == SourceFASJSON {
		return "does not exist in FAS"
	}
	return "is not defined in acl.groups"
}

// Resolve returns the FAS user of caller without checking any group: the
// trusted caller.FASUser, else the account's mapping (acl.accounts, the
// FASJSON ircnicks search, or acl.account_is_fas_user with the static
// source). Errors wrap
// ErrNoFASUser or ErrUnavailable and read well in a reply.
func (c *Checker) Resolve(ctx context.Context, caller Caller) (string, error) {
	if caller.Account == "" && caller.FASUser == "" {
		return "", fmt.Errorf("%w: you are not identified to services", ErrNoFASUser)
	}
	return c.resolve(ctx, caller)
}

// MemberOf returns, sorted, the groups named in acl.commands that FAS user
// user belongs to (for whoami). Groups that could not be checked are left
// out and their errors joined into err.
func (c *Checker) MemberOf(ctx context.Context, user string) ([]string, error) {
	var in []string
	var errs []error
	for _, g := range c.policyGroups {
		ok, err := c.member(ctx, user, g)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			in = append(in, g)
		}
	}
	return in, errors.Join(errs...)
}

// SetCaseMapping tells the Checker how the IRC network compares account
// names (its ISUPPORT CASEMAPPING); until then rfc1459 is assumed. Cached
// account mappings are forgotten, since their keys were folded the old way.
func (c *Checker) SetCaseMapping(m CaseMapping) {
	if old, _ := c.casemap.Load().(CaseMapping); old == m {
		return
	}
	c.casemap.Store(m)
	c.mu.Lock()
	c.mappings.clear()
	c.mu.Unlock()
}

// caseMapping is the network's case mapping.
func (c *Checker) caseMapping() CaseMapping {
	m, _ := c.casemap.Load().(CaseMapping)
	return m
}

// accountUser returns the FAS user acl.accounts maps an IRC services
// account to, comparing account names with the network's case mapping.
// Keys that start with "@" are Matrix ids and never match an IRC account.
func (c *Checker) accountUser(account string) (string, bool) {
	if strings.HasPrefix(account, "@") {
		return "", false
	}
	cm := c.caseMapping()
	key := cm.Fold(account)
	for a, u := range c.accounts {
		if !strings.HasPrefix(a, "@") && cm.Fold(a) == key {
			return u, true
		}
	}
	return "", false
}

// matrixAccountUser returns the FAS user acl.accounts maps a Matrix id to:
// only keys that start with "@" match, exactly, but for the server name,
// which is compared without regard to case (DNS names are not
// case-sensitive; localparts are).
func (c *Checker) matrixAccountUser(id string) (string, bool) {
	key, ok := normMatrixID(id)
	if !ok {
		return "", false
	}
	for a, u := range c.accounts {
		if k, ok := normMatrixID(a); ok && k == key {
			return u, true
		}
	}
	return "", false
}

// Invalidate forgets what the caches hold about a services account: its
// FAS user and the group memberships of that user (and of a FAS user with
// the account's name), so that the next command asks again.
func (c *Checker) Invalidate(account string) {
	key := c.caseMapping().Fold(account)
	users := map[string]bool{strings.ToLower(account): true}
	if u, ok := c.accountUser(account); ok {
		users[strings.ToLower(u)] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.mappings.peek(key); ok && m.user != "" {
		users[strings.ToLower(m.user)] = true
	}
	c.mappings.delete(key)
	c.members.deleteFunc(func(k string) bool {
		user, _, _ := strings.Cut(k, "\x00")
		return users[user]
	})
}

// Flush empties the caches.
func (c *Checker) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members.clear()
	c.mappings.clear()
	c.downErr = nil
}
