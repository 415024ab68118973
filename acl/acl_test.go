package acl

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness/fasjsonfake"
)

// clock is an injectable, settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// want is what a test expects of a Decision; empty strings are not checked,
// and every string of reason must appear in Decision.Reason.
type want struct {
	allowed  bool
	fasUser  string
	rule     string
	required []string
	reason   []string
}

func check(t *testing.T, name string, d Decision, w want) {
	t.Helper()
	if d.Allowed != w.allowed {
		t.Errorf("%s: Allowed = %v, want %v (reason %q)", name, d.Allowed, w.allowed, d.Reason)
	}
	if w.fasUser != "" && d.FASUser != w.fasUser {
		t.Errorf("%s: FASUser = %q, want %q", name, d.FASUser, w.fasUser)
	}
	if w.rule != "" && d.Rule != w.rule {
		t.Errorf("%s: Rule = %q, want %q", name, d.Rule, w.rule)
	}
	if w.required != nil && !reflect.DeepEqual(d.Required, w.required) {
		t.Errorf("%s: Required = %q, want %q", name, d.Required, w.required)
	}
	if w.allowed && d.Reason != "" {
		t.Errorf("%s: allowed with a reason %q", name, d.Reason)
	}
	if !w.allowed && d.Reason == "" {
		t.Errorf("%s: denied without a reason", name)
	}
	for _, s := range w.reason {
		if !strings.Contains(d.Reason, s) {
			t.Errorf("%s: Reason %q does not contain %q", name, d.Reason, s)
		}
	}
}

func mustNew(t *testing.T, cfg config.ACL, opts Options) *Checker {
	t.Helper()
	c, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// staticConfig is the defaults with the static source and a few rules.
func staticConfig() config.ACL {
	c := config.Default().ACL
	c.Source = "static"
	c.AccountIsFASUser = true
	c.Accounts = map[string]string{"aliceirc": "alice"}
	c.Groups = map[string][]string{
		"sysadmin-build": {"alice"},
		"sysadmin-koji":  {"Carol"},
	}
	c.Commands = map[string][]string{
		"capacity":         {"sysadmin-build"},
		"help":             {"*"},
		"whoami":           {"@identified"},
		"connections":      {"@identified"},
		"connections kill": {"sysadmin-koji"},
		"outage":           {"sysadmin-build"},
		"restart":          {"sysadmin-build", "sysadmin-koji"},
		"ghost":            {"no-such-group"},
		"nobody":           {},
	}
	return c
}

func TestAuthorizeStatic(t *testing.T) {
	c := mustNew(t, staticConfig(), Options{})
	anon := Caller{}
	tests := []struct {
		name     string
		caller   Caller
		command  string
		readOnly bool
		want     want
	}{
		{"member allowed", Caller{Account: "AliceIRC"}, "capacity", false,
			want{allowed: true, fasUser: "alice", rule: "acl.commands[capacity]", required: []string{"sysadmin-build"}}},
		{"non-member denied", Caller{Account: "bob"}, "capacity", false,
			want{fasUser: "bob", rule: "acl.commands[capacity]", required: []string{"sysadmin-build"},
				reason: []string{"sysadmin-build", "bob is not a member"}}},
		{"anyone, not logged in", anon, "help", true,
			want{allowed: true, rule: "acl.commands[help]", required: []string{"*"}}},
		{"anyone, mutating too", anon, "help", false, want{allowed: true}},
		{"@identified, not logged in", anon, "whoami", true,
			want{rule: "acl.commands[whoami]", reason: []string{"NickServ"}}},
		{"@identified, logged in", Caller{Account: "bob"}, "whoami", true,
			want{allowed: true, fasUser: "bob", rule: "acl.commands[whoami]", required: []string{"@identified"}}},
		{"no entry, read-only", Caller{Account: "bob"}, "hosts", true,
			want{allowed: true, rule: "default: read-only @identified", required: []string{"@identified"}}},
		{"no entry, read-only, not logged in", anon, "hosts", true,
			want{rule: "default: read-only @identified", reason: []string{"identify to NickServ"}}},
		{"no entry, mutating", Caller{Account: "AliceIRC"}, "reboot", false,
			want{rule: "default: deny", reason: []string{"no acl.commands entry", "reboot"}}},
		{"no entry, mutating, not logged in", anon, "reboot", false,
			want{rule: "default: deny", reason: []string{"no acl.commands entry"}}},
		{"subcommand key wins", Caller{Account: "carol"}, "connections kill", false,
			want{allowed: true, fasUser: "carol", rule: "acl.commands[connections kill]", required: []string{"sysadmin-koji"}}},
		{"subcommand key denies", Caller{Account: "AliceIRC"}, "connections kill", false,
			want{rule: "acl.commands[connections kill]", reason: []string{"sysadmin-koji"}}},
		{"connections: [@identified] does not grant connections kill", Caller{Account: "bob"}, "connections kill", false,
			want{rule: "acl.commands[connections kill]", reason: []string{"sysadmin-koji"}}},
		{"command key", Caller{Account: "bob"}, "connections", true,
			want{allowed: true, rule: "acl.commands[connections]"}},
		{"a parent entry never grants a mutating subcommand", Caller{Account: "AliceIRC"}, "outage draft", false,
			want{rule: "default: deny", reason: []string{"no acl.commands entry", "outage draft"}}},
		{"a read-only subcommand falls back to its parent", Caller{Account: "AliceIRC"}, "outage show", true,
			want{allowed: true, rule: "acl.commands[outage]"}},
		{"a read-only subcommand falls back and denies", Caller{Account: "bob"}, "outage show", true,
			want{rule: "acl.commands[outage]", reason: []string{"sysadmin-build"}}},
		{"command case and spaces", Caller{Account: "carol"}, "  Connections   KILL ", false,
			want{allowed: true, rule: "acl.commands[connections kill]"}},
		{"accounts map", Caller{Account: "AliceIRC"}, "capacity", false,
			want{allowed: true, fasUser: "alice"}},
		{"accounts map wins over the account name", Caller{Account: "aliceirc"}, "restart", false,
			want{allowed: true, fasUser: "alice"}},
		{"any of the groups", Caller{Account: "carol"}, "restart", false,
			want{allowed: true, required: []string{"sysadmin-build", "sysadmin-koji"}}},
		{"none of the groups", Caller{Account: "bob"}, "restart", false,
			want{reason: []string{"one of the FAS groups sysadmin-build, sysadmin-koji"}}},
		{"exec --as member", Caller{FASUser: "alice"}, "capacity", false,
			want{allowed: true, fasUser: "alice"}},
		{"exec --as is trusted over the account", Caller{Account: "alice", FASUser: "bob"}, "capacity", false,
			want{fasUser: "bob"}},
		{"exec --as invalid name", Caller{FASUser: "../alice"}, "capacity", false,
			want{reason: []string{"not a valid FAS username"}}},
		{"unknown group", Caller{Account: "AliceIRC"}, "ghost", false,
			want{rule: "acl.commands[ghost]", reason: []string{"no-such-group", "not defined in acl.groups"}}},
		{"empty group list", Caller{Account: "AliceIRC"}, "nobody", true,
			want{rule: "acl.commands[nobody]", reason: []string{"lists no group"}}},
		{"account named after a FAS user that acl.accounts gives to another account", Caller{Account: "alice"}, "capacity", false,
			want{rule: "acl.commands[capacity]", reason: []string{"alice", "linked to another services account"}}},
		{"account named after a mapped FAS user, other case", Caller{Account: "ALICE"}, "capacity", false,
			want{reason: []string{"linked to another services account"}}},
		{"account not a FAS name", Caller{Account: "bad/name"}, "capacity", false,
			want{reason: []string{"not a valid FAS username"}}},
	}
	for _, tt := range tests {
		d := c.Authorize(context.Background(), tt.caller, tt.command, tt.readOnly)
		check(t, tt.name, d, tt.want)
	}
}

func TestAccountIsFASUserFalse(t *testing.T) {
	cfg := staticConfig()
	cfg.AccountIsFASUser = false
	cfg.Network = "irc.libera.chat"
	for _, source := range []string{"static", "fasjson"} {
		fake := startFake(t)
		cfg.Source, cfg.FASJSONURL = source, fake.URL()
		if source == "fasjson" {
			cfg.Groups = nil
		}
		c := mustNew(t, cfg, Options{})
		d := c.Authorize(context.Background(), Caller{Account: "alice"}, "capacity", false)
		check(t, source+": no mapping", d, want{reason: []string{`"alice" is not linked to a FAS user`, "acl.accounts"}})
		if source == "fasjson" && !strings.Contains(d.Reason, "irc://irc.libera.chat/alice") {
			t.Errorf("fasjson: reason %q does not say which IRC nick to add", d.Reason)
		}
		d = c.Authorize(context.Background(), Caller{Account: "aliceirc"}, "capacity", false)
		check(t, source+": mapped", d, want{allowed: true, fasUser: "alice"})
		// @identified needs a services account, not a FAS user.
		d = c.Authorize(context.Background(), Caller{Account: "alice"}, "whoami", true)
		check(t, source+": @identified without FAS user", d, want{allowed: true})
		if d.FASUser != "" {
			t.Errorf("%s: FASUser %q for an unmapped account", source, d.FASUser)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := config.ACL{
		Source:   "ldap",
		Timeout:  -time.Second,
		Accounts: map[string]string{"x": "not a name"},
		Groups:   map[string][]string{"ok-group": {"-dash"}},
		Commands: map[string][]string{
			"capacity": {"bad group"},
			"reboot":   {"@admins"},
		},
	}
	_, err := New(cfg, Options{})
	if err == nil {
		t.Fatal("New accepted a bad configuration")
	}
	for _, key := range []string{"acl.source", "acl.timeout", "acl.accounts[x]", "acl.groups[ok-group]",
		"acl.commands[capacity]", "acl.commands[reboot]"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}

	for _, u := range []string{"", "ftp://fasjson.example.org", "not a url", "https://fasjson.example.org/?x=1",
		"http://fasjson.example.org", "http://10.0.0.5:8080", "http://localhost.example.org"} {
		if _, err := New(config.ACL{Source: "fasjson", FASJSONURL: u}, Options{}); err == nil ||
			!strings.Contains(err.Error(), "acl.fasjson_url") {
			t.Errorf("fasjson_url %q: err = %v", u, err)
		}
	}
	if _, err := New(config.Default().ACL, Options{}); err != nil {
		t.Errorf("the defaults: %v", err)
	}
}

// fakeUsers are the FAS users of the fasjson tests.
func fakeUsers() map[string]fasjsonfake.User {
	return map[string]fasjsonfake.User{
		"alice":   {Groups: []string{"sysadmin-build"}, IRCNicks: []string{"irc:/alice_irc"}},
		"bob":     {Groups: []string{"packager"}, IRCNicks: []string{"irc:/bob"}},
		"carol":   {Groups: []string{"sysadmin-build"}, IRCNicks: []string{"irc://irc.libera.chat/carolnick"}},
		"dan":     {Groups: []string{"sysadmin-build"}, IRCNicks: []string{"irc://irc.oftc.net/dannick"}},
		"shared1": {Groups: []string{"sysadmin-build"}, IRCNicks: []string{"irc:/shared"}},
		"shared2": {Groups: []string{"sysadmin-build"}, IRCNicks: []string{"irc://irc.libera.chat/shared"}},
		"twice":   {Groups: []string{"sysadmin-build"}, IRCNicks: []string{"irc:/twicenick", "irc://irc.libera.chat/twicenick"}},
	}
}

func startFake(t *testing.T) *fasjsonfake.Server {
	t.Helper()
	s, err := fasjsonfake.Start("127.0.0.1:0", fakeUsers())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func fasjsonConfig(url string) config.ACL {
	return config.ACL{
		Source:     "fasjson",
		FASJSONURL: url,
		CacheTTL:   5 * time.Minute,
		Timeout:    2 * time.Second,
		Network:    "irc.libera.chat",
		Accounts:   map[string]string{"mapped": "alice"},
		Commands: map[string][]string{
			"capacity": {"sysadmin-build"},
			"ghost":    {"no-such-group"},
			"either":   {"no-such-group", "sysadmin-build"},
		},
	}
}

func TestAuthorizeFASJSON(t *testing.T) {
	fake := startFake(t)
	c := mustNew(t, fasjsonConfig(fake.URL()), Options{})
	tests := []struct {
		name    string
		caller  Caller
		command string
		want    want
	}{
		{"member", Caller{Account: "alice_irc"}, "capacity",
			want{allowed: true, fasUser: "alice", rule: "acl.commands[capacity]"}},
		{"non-member", Caller{Account: "bob"}, "capacity",
			want{fasUser: "bob", required: []string{"sysadmin-build"}, reason: []string{"sysadmin-build", "bob is not a member"}}},
		{"account unknown to FAS is not linked", Caller{Account: "zed"}, "capacity",
			want{reason: []string{"not linked to a FAS user", "irc://irc.libera.chat/zed"}}},
		{"account named after a FAS user whose profile names another nick", Caller{Account: "alice"}, "capacity",
			want{reason: []string{"\"alice\" is not linked to a FAS user"}}},
		{"Kelvin sign is not k", Caller{Account: "\u212Aelvin"}, "capacity",
			want{reason: []string{"not linked"}}},
		{"unknown group 404", Caller{Account: "alice_irc"}, "ghost",
			want{reason: []string{"no-such-group", "does not exist in FAS"}}},
		{"unknown group and a member", Caller{Account: "alice_irc"}, "either", want{allowed: true}},
		{"unknown group and a non-member", Caller{Account: "bob"}, "either",
			want{reason: []string{"bob is not a member", "no-such-group does not exist in FAS"}}},
		{"ircnick irc:/ form", Caller{Account: "alice_irc"}, "capacity", want{allowed: true, fasUser: "alice"}},
		{"ircnick network form", Caller{Account: "carolnick"}, "capacity", want{allowed: true, fasUser: "carol"}},
		{"ircnick on another network", Caller{Account: "dannick"}, "capacity", want{reason: []string{"not linked"}}},
		{"ircnick stored in both forms", Caller{Account: "twicenick"}, "capacity", want{allowed: true, fasUser: "twice"}},
		{"ircnick of two users", Caller{Account: "shared"}, "capacity",
			want{reason: []string{"several FAS users (shared1, shared2)", "acl.accounts"}}},
		{"accounts map first", Caller{Account: "Mapped"}, "capacity", want{allowed: true, fasUser: "alice"}},
		{"exec --as", Caller{FASUser: "carol"}, "capacity", want{allowed: true, fasUser: "carol"}},
	}
	for _, tt := range tests {
		d := c.Authorize(context.Background(), tt.caller, tt.command, false)
		check(t, tt.name, d, tt.want)
	}
}

// failingAuth is an Authenticator that counts its calls and may fail.
type failingAuth struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (a *failingAuth) Authenticate(req *http.Request) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	req.Header.Set("Authorization", "Negotiate dGVzdA==")
	return a.err
}

func TestFASJSONUnavailable(t *testing.T) {
	closed := startFake(t)
	closedURL := closed.URL()
	closed.Close()

	tests := []struct {
		name    string
		setup   func(s *fasjsonfake.Server)
		url     string
		timeout time.Duration
		auth    Authenticator
		reason  []string
	}{
		{name: "500", setup: func(s *fasjsonfake.Server) { s.SetFailure(500) },
			reason: []string{"FASJSON unavailable: 500", "LDAP"}},
		{name: "503", setup: func(s *fasjsonfake.Server) { s.SetFailure(503) },
			reason: []string{"FASJSON unavailable: 503"}},
		{name: "401", setup: func(s *fasjsonfake.Server) { s.SetFailure(401) },
			reason: []string{"FASJSON unavailable: 401", "credentials"}},
		{name: "server down", url: closedURL,
			reason: []string{"FASJSON unavailable: ", "refused"}},
		{name: "slow server", setup: func(s *fasjsonfake.Server) { s.SetDelay(3 * time.Second) },
			timeout: 150 * time.Millisecond, reason: []string{"FASJSON unavailable: no answer within 150ms"}},
		{name: "authenticator fails", auth: &failingAuth{err: errors.New("no Kerberos ticket")},
			reason: []string{"FASJSON unavailable: authenticating: no Kerberos ticket"}},
	}
	for _, tt := range tests {
		fake := startFake(t)
		if tt.setup != nil {
			tt.setup(fake)
		}
		cfg := fasjsonConfig(fake.URL())
		if tt.url != "" {
			cfg.FASJSONURL = tt.url
		}
		if tt.timeout != 0 {
			cfg.Timeout = tt.timeout
		}
		c := mustNew(t, cfg, Options{Authenticator: tt.auth})
		for _, caller := range []Caller{{Account: "alice"}, {Account: "mapped"}, {FASUser: "alice"}} {
			t0 := time.Now()
			d := c.Authorize(context.Background(), caller, "capacity", false)
			check(t, tt.name+" "+caller.Account+caller.FASUser, d, want{rule: "acl.commands[capacity]",
				required: []string{"sysadmin-build"}, reason: tt.reason})
			if el := time.Since(t0); tt.timeout != 0 && el > 2*time.Second {
				t.Errorf("%s: Authorize took %s with a %s timeout", tt.name, el, tt.timeout)
			}
		}
		// Read-only commands with no entry need no FASJSON and still work.
		d := c.Authorize(context.Background(), Caller{Account: "alice"}, "hosts", true)
		check(t, tt.name+": @identified default", d, want{allowed: true})
	}
}

func TestCallerContextCancelled(t *testing.T) {
	fake := startFake(t)
	fake.SetDelay(3 * time.Second)
	c := mustNew(t, fasjsonConfig(fake.URL()), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := c.Authorize(ctx, Caller{FASUser: "alice"}, "capacity", false)
	check(t, "cancelled", d, want{reason: []string{"FASJSON unavailable: request abandoned"}})
}

func TestUnexpectedAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		reason string
	}{
		{"not json", 200, "<html>hello</html>", "not JSON"},
		{"no result", 200, `{"message": "ok"}`, "no result"},
		{"null result", 200, `{"result": null}`, "no result"},
		{"string result", 200, `{"result": "yes"}`, "unexpected result"},
		{"html 404", 404, "<html>Not Found</html>", "404"},
		{"other status", 418, `{"message": "line1\nline2"}`, "418 I'm a teapot: line1 line2"},
	}
	for _, tt := range tests {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tt.status)
			w.Write([]byte(tt.body))
		})}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		c := mustNew(t, fasjsonConfig("http://"+ln.Addr().String()), Options{})
		d := c.Authorize(context.Background(), Caller{FASUser: "alice"}, "capacity", false)
		check(t, tt.name, d, want{reason: []string{"FASJSON unavailable", tt.reason}})
		srv.Close()
	}
}

func TestCache(t *testing.T) {
	fake := startFake(t)
	clk := newClock()
	cfg := fasjsonConfig(fake.URL())
	c := mustNew(t, cfg, Options{Now: clk.Now})
	ctx := context.Background()
	requests := func() func() int {
		n := fake.Requests()
		return func() int { return fake.Requests() - n }
	}

	// First call: two ircnicks searches and one is-member; second: none.
	got := requests()
	check(t, "bob first", c.Authorize(ctx, Caller{Account: "bob"}, "capacity", false), want{fasUser: "bob"})
	if n := got(); n != 3 {
		t.Errorf("first Authorize made %d requests, want 3", n)
	}
	got = requests()
	check(t, "bob cached", c.Authorize(ctx, Caller{Account: "bob"}, "capacity", false), want{fasUser: "bob"})
	if n := got(); n != 0 {
		t.Errorf("cached Authorize made %d requests, want 0", n)
	}

	// bob joins the group: the cache hides it until the TTL passes.
	fake.SetUser("bob", fasjsonfake.User{Groups: []string{"sysadmin-build"}, IRCNicks: []string{"irc:/bob"}})
	clk.Advance(cfg.CacheTTL - time.Second)
	got = requests()
	check(t, "bob before expiry", c.Authorize(ctx, Caller{Account: "bob"}, "capacity", false), want{})
	if n := got(); n != 0 {
		t.Errorf("Authorize before expiry made %d requests", n)
	}
	clk.Advance(time.Second)
	got = requests()
	check(t, "bob after expiry", c.Authorize(ctx, Caller{Account: "bob"}, "capacity", false), want{allowed: true})
	if n := got(); n != 3 {
		t.Errorf("Authorize after expiry made %d requests, want 3", n)
	}

	// Errors are not cached: the next call after recovery asks again.
	fake.SetFailure(500)
	check(t, "carol while down", c.Authorize(ctx, Caller{FASUser: "carol"}, "capacity", false),
		want{reason: []string{"FASJSON unavailable"}})
	// The failure is remembered for FailureMemory: no request in that time.
	got = requests()
	check(t, "carol, failure remembered", c.Authorize(ctx, Caller{FASUser: "carol"}, "capacity", false),
		want{reason: []string{"FASJSON unavailable"}})
	if n := got(); n != 0 {
		t.Errorf("Authorize within FailureMemory of a failure made %d requests, want 0", n)
	}
	fake.SetFailure(0)
	clk.Advance(FailureMemory)
	got = requests()
	check(t, "carol after recovery", c.Authorize(ctx, Caller{FASUser: "carol"}, "capacity", false), want{allowed: true})
	if n := got(); n != 1 {
		t.Errorf("Authorize after recovery made %d requests, want 1", n)
	}

	// A 404 (unknown group) is not cached either.
	got = requests()
	c.Authorize(ctx, Caller{FASUser: "carol"}, "ghost", false)
	c.Authorize(ctx, Caller{FASUser: "carol"}, "ghost", false)
	if n := got(); n != 2 {
		t.Errorf("two unknown-group checks made %d requests, want 2", n)
	}

	// Invalidate drops the account's mapping and its user's memberships.
	check(t, "alice_irc", c.Authorize(ctx, Caller{Account: "alice_irc"}, "capacity", false),
		want{allowed: true, fasUser: "alice"})
	fake.SetUser("alice", fasjsonfake.User{Groups: []string{"packager"}, IRCNicks: []string{"irc:/alice_irc"}})
	check(t, "alice_irc cached", c.Authorize(ctx, Caller{Account: "alice_irc"}, "capacity", false),
		want{allowed: true})
	c.Invalidate("ALICE_IRC")
	got = requests()
	check(t, "alice_irc invalidated", c.Authorize(ctx, Caller{Account: "alice_irc"}, "capacity", false),
		want{fasUser: "alice", reason: []string{"alice is not a member"}})
	if n := got(); n != 3 {
		t.Errorf("Authorize after Invalidate made %d requests, want 3", n)
	}
	// Other entries survive Invalidate.
	got = requests()
	c.Authorize(ctx, Caller{FASUser: "carol"}, "capacity", false)
	if n := got(); n != 0 {
		t.Errorf("Invalidate dropped another user's entry (%d requests)", n)
	}

	// Flush drops everything.
	c.Flush()
	got = requests()
	c.Authorize(ctx, Caller{FASUser: "carol"}, "capacity", false)
	if n := got(); n != 1 {
		t.Errorf("Authorize after Flush made %d requests, want 1", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	fake := startFake(t)
	cfg := fasjsonConfig(fake.URL())
	cfg.CacheTTL = -1
	c := mustNew(t, cfg, Options{})
	n := fake.Requests()
	for range 3 {
		c.Authorize(context.Background(), Caller{Account: "alice_irc"}, "capacity", false)
	}
	if got := fake.Requests() - n; got != 9 {
		t.Errorf("3 uncached Authorize calls made %d requests, want 9", got)
	}
}

func TestCacheBounded(t *testing.T) {
	fake := startFake(t)
	clk := newClock()
	c := mustNew(t, fasjsonConfig(fake.URL()), Options{Now: clk.Now, CacheSize: 3})
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7"} {
		c.Authorize(context.Background(), Caller{Account: u}, "capacity", false)
		clk.Advance(time.Second)
		c.mu.Lock()
		m, a := c.members.len(), c.mappings.len()
		c.mu.Unlock()
		if m > 3 || a > 3 {
			t.Fatalf("after %s the caches hold %d memberships and %d mappings, cap 3", u, m, a)
		}
	}
	// The most recent entry survived eviction.
	n := fake.Requests()
	c.Authorize(context.Background(), Caller{Account: "u7"}, "capacity", false)
	if got := fake.Requests() - n; got != 0 {
		t.Errorf("the newest entry was evicted (%d requests)", got)
	}
}

func TestTTLCacheEviction(t *testing.T) {
	now := newClock().Now()
	c := newTTLCache[int](2)
	c.put("a", 1, now.Add(time.Minute), now)
	c.put("b", 2, now.Add(2*time.Minute), now)
	c.put("c", 3, now.Add(3*time.Minute), now) // evicts a, the soonest
	if _, ok := c.get("a", now); ok {
		t.Error("a survived eviction")
	}
	if v, ok := c.get("c", now); !ok || v != 3 {
		t.Errorf("c = %v, %v", v, ok)
	}
	c.put("c", 4, now.Add(time.Minute), now) // replacing evicts nothing
	if c.len() != 2 {
		t.Errorf("len %d after replacing", c.len())
	}
	later := now.Add(90 * time.Second)
	if _, ok := c.get("c", later); ok {
		t.Error("c did not expire")
	}
	c.put("d", 5, later.Add(time.Minute), later)
	c.put("e", 6, later.Add(time.Minute), later) // sweeps nothing expired, evicts b
	if c.len() != 2 {
		t.Errorf("len %d, want 2", c.len())
	}
}

func TestResolveAndMemberOf(t *testing.T) {
	fake := startFake(t)
	cfg := fasjsonConfig(fake.URL())
	cfg.Commands["build"] = []string{"packager", "*"}
	c := mustNew(t, cfg, Options{})
	ctx := context.Background()
	if u, err := c.Resolve(ctx, Caller{Account: "carolnick"}); err != nil || u != "carol" {
		t.Errorf("Resolve(carolnick) = %q, %v", u, err)
	}
	if _, err := c.Resolve(ctx, Caller{Account: "shared"}); !errors.Is(err, ErrNoFASUser) {
		t.Errorf("Resolve(shared) error %v, want ErrNoFASUser", err)
	}
	if _, err := c.Resolve(ctx, Caller{}); !errors.Is(err, ErrNoFASUser) {
		t.Errorf("Resolve of nobody: %v", err)
	}
	groups, err := c.MemberOf(ctx, "alice")
	if !reflect.DeepEqual(groups, []string{"sysadmin-build"}) || !errors.Is(err, ErrUnknownGroup) {
		t.Errorf("MemberOf(alice) = %v, %v", groups, err)
	}
	fake.SetFailure(500)
	c.Flush()
	if _, err := c.Resolve(ctx, Caller{Account: "bob"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Resolve while FASJSON is down: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	fake := startFake(t)
	c := mustNew(t, fasjsonConfig(fake.URL()), Options{})
	var wg sync.WaitGroup
	errs := make(chan string, 400)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				switch (i + j) % 7 {
				case 5:
					c.Invalidate("alice_irc")
				case 6:
					c.Flush()
				}
				if d := c.Authorize(context.Background(), Caller{Account: "alice_irc"}, "capacity", false); !d.Allowed {
					errs <- "alice denied: " + d.Reason
				}
				if d := c.Authorize(context.Background(), Caller{Account: "bob"}, "capacity", false); d.Allowed {
					errs <- "bob allowed"
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestValidName(t *testing.T) {
	for _, s := range []string{"a", "alice", "sysadmin-build", "a.b_c-d", "0abc", strings.Repeat("a", 64)} {
		if !ValidName(s) {
			t.Errorf("ValidName(%q) = false", s)
		}
	}
	for _, s := range []string{"", "-a", ".a", "a/b", "a b", "a%2f", "ä", strings.Repeat("a", 65), "a\n"} {
		if ValidName(s) {
			t.Errorf("ValidName(%q) = true", s)
		}
	}
}

// TestSearchVerified checks that a search result is used only when the
// user's profile really lists the nick, or hides its nicks (private).
func TestSearchVerified(t *testing.T) {
	answers := map[string]string{
		// A server that ignored __exact would answer like this.
		"irc:/alice": `{"result": [{"username": "mallory", "ircnicks": ["irc:/alice2"]}]}`,
		// A private profile: FASJSON leaves the nicks out.
		"irc:/priv": `{"result": [{"username": "privuser"}]}`,
		// Case differences in the stored value are accepted.
		"irc:/Case": `{"result": [{"username": "caseuser", "ircnicks": ["IRC:/case"]}]}`,
		// A broken username is ignored.
		"irc:/weird": `{"result": [{"username": "../etc", "ircnicks": ["irc:/weird"]}]}`,
	}
	var mu sync.Mutex
	var asked []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/search/users/":
			v := r.URL.Query().Get("ircnick__exact")
			mu.Lock()
			asked = append(asked, v)
			mu.Unlock()
			body, ok := answers[v]
			if !ok {
				body = `{"result": []}`
			}
			w.Write([]byte(body))
		case strings.HasPrefix(r.URL.Path, "/v1/groups/sysadmin-build/is-member/"):
			w.Write([]byte(`{"result": true}`))
		default:
			w.WriteHeader(404)
			w.Write([]byte(`{"message": "Group not found"}`))
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	cfg := fasjsonConfig("http://" + ln.Addr().String())
	cfg.AccountIsFASUser = false
	cfg.Network = ""
	c := mustNew(t, cfg, Options{})
	tests := []struct {
		account string
		want    want
	}{
		{"alice", want{reason: []string{"not linked to a FAS user", "irc:/alice"}}},
		{"priv", want{allowed: true, fasUser: "privuser"}},
		{"Case", want{allowed: true, fasUser: "caseuser"}},
		{"weird", want{reason: []string{"not linked to a FAS user"}}},
	}
	for _, tt := range tests {
		d := c.Authorize(context.Background(), Caller{Account: tt.account}, "capacity", false)
		check(t, tt.account, d, tt.want)
	}
	mu.Lock()
	defer mu.Unlock()
	// Without acl.network only the irc:/ form is searched.
	if !reflect.DeepEqual(asked, []string{"irc:/alice", "irc:/priv", "irc:/Case", "irc:/weird"}) {
		t.Errorf("searched %q", asked)
	}
}

// TestParentEntryNeverGrantsMutatingChild: connections: [@identified]
// lets anyone logged in list connections, not kill them; outage does not
// grant outage draft.
func TestParentEntryNeverGrantsMutatingChild(t *testing.T) {
	c := mustNew(t, config.ACL{Source: "static",
		Groups:   map[string][]string{"sysadmin-build": {"alice"}},
		Accounts: map[string]string{"alice": "alice"},
		Commands: map[string][]string{"connections": {"@identified"}, "outage": {"*"}}}, Options{})
	ctx := context.Background()
	alice := Caller{Account: "alice"}
	if d := c.Authorize(ctx, alice, "connections", true); !d.Allowed {
		t.Errorf("connections: denied (%s)", d.Reason)
	}
	for _, cmd := range []string{"connections kill", "outage draft"} {
		if d := c.Authorize(ctx, alice, cmd, false); d.Allowed || d.Rule != "default: deny" {
			t.Errorf("%s: allowed=%v by %s, want refused by default: deny", cmd, d.Allowed, d.Rule)
		}
	}
	if d := c.Authorize(ctx, Caller{}, "outage show", true); !d.Allowed {
		t.Errorf("outage show by anyone: denied (%s)", d.Reason)
	}
}

// TestFASJSONOnlyHTTPSOrLoopback: a FASJSON URL of plain http is accepted
// on loopback only, and a redirect from there to plain http on another host
// is not followed: the question and its credentials never leave in the
// clear.
func TestFASJSONOnlyHTTPSOrLoopback(t *testing.T) {
	for _, u := range []string{"http://fasjson.example.org", "HTTP://192.0.2.1:8080/fasjson"} {
		_, err := New(fasjsonConfig(u), Options{})
		if err == nil || !strings.Contains(err.Error(), "acl.fasjson_url") || !strings.Contains(err.Error(), "https") {
			t.Errorf("New with %s: %v, want a refusal asking for https", u, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1", "https://fasjson.example.org"} {
		if _, err := New(fasjsonConfig(u), Options{}); err != nil {
			t.Errorf("New with %s: %v", u, err)
		}
	}

	// The loopback server sends every request to plain http elsewhere; the
	// address is TEST-NET-1, so a request that left would hang, not pass.
	var elsewhere atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1"+r.URL.RequestURI(), http.StatusFound)
	}))
	defer srv.Close()
	var seen []string
	base := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		seen = append(seen, r.URL.Host)
		if r.URL.Host != strings.TrimPrefix(srv.URL, "http://") {
			elsewhere.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := mustNew(t, fasjsonConfig(srv.URL), Options{HTTPClient: base})
	d := c.Authorize(context.Background(), Caller{FASUser: "alice"}, "capacity", false)
	check(t, "redirect to http elsewhere", d, want{reason: []string{"FASJSON unavailable: ", "refused: not https"}})
	if elsewhere.Load() != 0 {
		t.Errorf("a request left for another host over http: %v", seen)
	}
	if base.CheckRedirect != nil {
		t.Error("New changed the caller's client")
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
