// Package sandbox assembles the harness's real servers into one local Koji
// farm for kojibot: an IRC network with services accounts, PostgreSQL with
// Koji databases, a FASJSON stand-in, sshd builders, on request a Matrix
// homeserver (StartMatrix), and kojibot itself run as a separate process
// from a config file the sandbox writes. The end-to-end tests and `make
// demo` both use it.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/builders"
	"github.com/fedora-infra/kojibot/tests/harness/fasjsonfake"
	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

// Channel is the ops channel the sandbox's bots join.
const Channel = "#fedora-admin"

// Group is the FAS group the sandbox's mutating commands require.
const Group = "sysadmin-build"

// Options chooses what the sandbox starts.
type Options struct {
	// Dir holds everything; "" makes a temporary directory.
	Dir string
	// NoAccountTag starts IRC without the account-tag capability.
	NoAccountTag bool
	// Users are the IRC accounts to register (name → password), besides the bots'.
	Users map[string]string
	// Members are the FAS users in Group (static ACL and FASJSON alike).
	Members []string
	// Farm starts the sshd machines (hub, admin host, xen host and
	// builders, each builder's kojid the release's) and the upstream Koji
	// hub, whose database is DBs[KojiDB].
	Farm bool
	// KojiHosts are more build hosts for the farm's hub (Options.Farm),
	// added after the SOP's.
	KojiHosts []realkoji.SeedHost
	// FastBots connects every bot to the IRC port without flood limits,
	// sending 200 lines a second, unless its BotConfig asks for Paced:
	// for tests, where the pacing is not what most of them check.
	FastBots bool
	// ThroughHub has the bots on the farm's hub database reach Koji through
	// the hub's API, the recommended way (koji.hub with the bots' Koji user's
	// certificate); their database is then used for connections only.
	ThroughHub bool
}

// Sandbox is a running farm.
type Sandbox struct {
	Dir     string
	IRC     *ircnet.Network
	PG      *pgsql.Cluster
	FASJSON *fasjsonfake.Server
	// Farm is the sshd machines, when Options.Farm.
	Farm *builders.Farm
	// Koji is the upstream Koji hub of the farm, when Options.Farm: the
	// admin host's `koji` is its CLI, and a kojid takes its tasks.
	Koji *realkoji.Hub
	// DBs are the Koji databases by name.
	DBs   map[string]pgsql.DSNs
	Users map[string]string

	opts    Options
	binDir  string
	stop    chan struct{}
	mu      sync.Mutex
	bots    []*Bot
	reboots int
	// checkins is SeedProblems' check-in loop, which ends with stop.
	checkins sync.WaitGroup
	// matrix is StartMatrix's homeserver, stopped by Close.
	matrix *Matrix
	// kojidDirs are the builders' kojid directories (their logs).
	kojidDirs map[string]string
	// hushed counts the Hush calls in force per host name.
	hushed map[string]int
}

// Start starts IRC (with services), PostgreSQL and FASJSON, and registers
// the accounts in opts.Users.
func Start(ctx context.Context, opts Options) (*Sandbox, error) {
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "kojibot-sandbox-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// The daemons run unprivileged and must reach their directories.
	_ = os.Chmod(dir, 0o755)
	s := &Sandbox{Dir: dir, DBs: map[string]pgsql.DSNs{}, Users: opts.Users, opts: opts, stop: make(chan struct{}),
		kojidDirs: map[string]string{}, hushed: map[string]int{}}
	var err error
	if s.IRC, err = ircnet.Start(ctx, filepath.Join(dir, "irc"), ircnet.Options{NoAccountTag: opts.NoAccountTag}); err != nil {
		return nil, fmt.Errorf("sandbox: irc: %w", err)
	}
	if s.PG, err = pgsql.Start(ctx, filepath.Join(dir, "pg")); err != nil {
		s.Close()
		return nil, fmt.Errorf("sandbox: postgresql: %w", err)
	}
	fasUsers := map[string]fasjsonfake.User{}
	for name := range opts.Users {
		u := fasjsonfake.User{IRCNicks: []string{"irc:/" + name}}
		for _, m := range opts.Members {
			if m == name {
				u.Groups = append(u.Groups, Group)
			}
		}
		fasUsers[name] = u
	}
	if s.FASJSON, err = fasjsonfake.Start("", fasUsers); err != nil {
		s.Close()
		return nil, fmt.Errorf("sandbox: fasjson: %w", err)
	}
	s.FASJSON.AddGroups(Group)
	for name, pw := range opts.Users {
		if err := s.IRC.RegisterAccount(ctx, name, pw); err != nil {
			s.Close()
			return nil, fmt.Errorf("sandbox: register %s: %w", name, err)
		}
	}
	if opts.Farm {
		if err := s.startFarm(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("sandbox: farm: %w", err)
		}
	}
	return s, nil
}

// CreateDB creates a Koji database of generation gen with the default seed
// (a fixture; with Options.Farm, KojiDB is the hub's and taken).
func (s *Sandbox) CreateDB(ctx context.Context, name string, gen pgsql.Generation) (pgsql.DSNs, error) {
	return s.CreateDBSeed(ctx, name, gen, pgsql.DefaultSeed())
}

// CreateDBSeed is CreateDB with the given seed instead of the default one
// (e.g. the default with a TimeZone of its own).
func (s *Sandbox) CreateDBSeed(ctx context.Context, name string, gen pgsql.Generation, seed pgsql.Seed) (pgsql.DSNs, error) {
	if s.opts.Farm && name == KojiDB {
		return pgsql.DSNs{}, fmt.Errorf("sandbox: %q is the farm's Koji hub database", name)
	}
	dsns, err := s.PG.CreateKojiDB(ctx, name, gen, seed)
	if err != nil {
		return dsns, err
	}
	s.mu.Lock()
	s.DBs[name] = dsns
	s.mu.Unlock()
	return dsns, nil
}

// BotConfig is what differs between the sandbox's bots.
type BotConfig struct {
	Nick    string
	DB      string // a database made by CreateDB
	Channel string // default Channel
	// ACLSource is "static" (default) or "fasjson" (the sandbox's FASJSON).
	ACLSource string
	// Lenient connects to the IRC port without flood limits (default: the
	// strict port with InspIRCd's default limits).
	Lenient bool
	// Paced keeps the strict port and the default outbound pacing even
	// when Options.FastBots is set: for a test of the pacing itself.
	Paced bool
	// Extra is merged into the generated YAML (top-level sections); a nil
	// value leaves that section out.
	Extra map[string]any
}

// WriteConfig registers the bot's services account and writes its YAML
// config and SASL password file; it returns the config's path.
func (s *Sandbox) WriteConfig(ctx context.Context, bc BotConfig) (string, error) {
	if bc.Channel == "" {
		bc.Channel = Channel
	}
	if bc.ACLSource == "" {
		bc.ACLSource = "static"
	}
	s.mu.Lock()
	dsns, ok := s.DBs[bc.DB]
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("sandbox: no database %q", bc.DB)
	}
	botDir := filepath.Join(s.Dir, "bots", bc.Nick)
	if err := os.MkdirAll(botDir, 0o700); err != nil {
		return "", err
	}
	password := "pw-" + bc.Nick + "-sandbox"
	if err := s.IRC.RegisterAccount(ctx, bc.Nick, password); err != nil && !strings.Contains(err.Error(), "already") {
		return "", fmt.Errorf("sandbox: register %s: %w", bc.Nick, err)
	}
	pwFile := filepath.Join(botDir, "sasl-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return "", err
	}
	fast := s.opts.FastBots && !bc.Paced
	port := s.IRC.StrictPort()
	if bc.Lenient || fast {
		port = s.IRC.Port()
	}
	cfg := map[string]any{
		"irc": map[string]any{
			"server": "127.0.0.1", "port": port, "tls": false, "nick": bc.Nick,
			"sasl":     map[string]any{"user": bc.Nick, "password_file": pwFile},
			"channels": []string{bc.Channel}, "notify_channel": bc.Channel,
			"reconnect_max": "2s",
		},
		// Tests and demo users type fast; the output pacing stays at its default.
		"commands": map[string]any{"user_rate": 5, "user_burst": 30},
		"acl": map[string]any{
			"source": bc.ACLSource, "fasjson_url": s.FASJSON.URL(), "cache_ttl": "2s", "timeout": "2s",
			// The sandbox's own network registers FAS names as accounts;
			// with FASJSON the links are the users' ircnicks.
			"account_is_fas_user": bc.ACLSource == "" || bc.ACLSource == "static",
			"groups":              map[string]any{Group: s.opts.Members},
			"commands": map[string]any{
				"capacity": []string{Group}, "enable": []string{Group}, "disable": []string{Group},
			},
		},
		"koji": map[string]any{
			"db":   map[string]any{"dsn": dsns.Kojibot},
			"user": "kojibot",
		},
		"http":   map[string]any{"listen": ""},
		"state":  map[string]any{"dir": filepath.Join(botDir, "state")}, // each bot its own journal and job records
		"outage": map[string]any{"to": []string{"fedora-infrastructure-list@lists.fedoraproject.org"}},
		"log":    map[string]any{"level": "debug", "file": filepath.Join(botDir, "kojibot.log")},
	}
	if s.opts.ThroughHub && s.Koji != nil && bc.DB == KojiDB {
		cert, err := s.Koji.Cert(KojiBotUser)
		if err != nil {
			return "", err
		}
		cfg["koji"].(map[string]any)["hub"] = map[string]any{
			"url": s.Koji.URL, "ca_file": s.Koji.CACert(), "auth": "certificate", "cert_file": cert,
		}
	}
	if fast {
		irc := cfg["irc"].(map[string]any)
		irc["send_rate"], irc["send_burst"] = 200, 200
	}
	if s.Farm != nil {
		for k, v := range s.farmConfig() {
			if have, ok := cfg[k].(map[string]any); ok {
				for kk, vv := range v.(map[string]any) {
					have[kk] = vv
				}
				continue
			}
			cfg[k] = v
		}
		acl := cfg["acl"].(map[string]any)["commands"].(map[string]any)
		for _, c := range []string{"cleanup", "restart", "reboot", "memory", "override", "connections kill", "outage draft"} {
			acl[c] = []string{Group}
		}
	}
	for k, v := range bc.Extra {
		if v == nil { // a section left out, as an operator would (irc: for a Matrix-only bot)
			delete(cfg, k)
			continue
		}
		if sub, ok := v.(map[string]any); ok {
			if have, ok := cfg[k].(map[string]any); ok {
				for kk, vv := range sub {
					have[kk] = vv
				}
				continue
			}
		}
		cfg[k] = v
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(botDir, "kojibot.yaml")
	return path, os.WriteFile(path, out, 0o600)
}

// Bot is a kojibot process.
type Bot struct {
	Nick   string
	Config string
	Log    string
	cmd    *exec.Cmd
	done   chan struct{}
}

// StartBot runs binary with the config at path until Stop.
func (s *Sandbox) StartBot(binary, nick, path string) (*Bot, error) {
	logPath := filepath.Join(filepath.Dir(path), "stderr.log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "run", "--config", path)
	cmd.Stdout, cmd.Stderr = f, f
	// The bot goes when the test binary or the demo dies without Close.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := harness.Spawn(cmd); err != nil {
		f.Close()
		return nil, err
	}
	b := &Bot{Nick: nick, Config: path, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(b.done) }()
	s.mu.Lock()
	s.bots = append(s.bots, b)
	s.mu.Unlock()
	return b, nil
}

// PID is the bot process's id.
func (b *Bot) PID() int { return b.cmd.Process.Pid }

// Exited reports whether the bot process has ended.
func (b *Bot) Exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// Stop ends the bot with SIGTERM (SIGKILL after 10s).
func (b *Bot) Stop() {
	if b.Exited() {
		return
	}
	_ = b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// Output returns what the bot wrote to stderr and its log file.
func (b *Bot) Output() string {
	stderr, _ := os.ReadFile(b.Log)
	logFile, _ := os.ReadFile(filepath.Join(filepath.Dir(b.Config), "kojibot.log"))
	return string(stderr) + string(logFile)
}

// Close stops every bot and server.
func (s *Sandbox) Close() {
	s.mu.Lock()
	bots := s.bots
	s.mu.Unlock()
	for _, b := range bots {
		b.Stop()
	}
	close(s.stop)
	s.checkins.Wait()
	// The builders' kojids go with their machines, before the hub.
	if s.Farm != nil {
		s.Farm.Stop()
	}
	if s.Koji != nil {
		s.Koji.Close()
	}
	s.mu.Lock()
	m := s.matrix
	s.mu.Unlock()
	if m != nil {
		m.HS.Stop()
	}
	if s.FASJSON != nil {
		s.FASJSON.Close()
	}
	if s.PG != nil {
		s.PG.Stop()
	}
	if s.IRC != nil {
		s.IRC.Stop()
	}
}

// BuildBinary builds kojibot into dir (with the race detector when race)
// and returns its path. It must run from inside the module.
func BuildBinary(dir string, race bool) (string, error) {
	out := filepath.Join(dir, "kojibot")
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", append(args, "./cmd/kojibot")...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	return out, nil
}

// moduleRoot finds the directory holding go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("sandbox: go.mod not found")
		}
		dir = parent
	}
}
