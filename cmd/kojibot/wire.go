package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/bot"
	"github.com/fedora-infra/kojibot/bot/irc"
	"github.com/fedora-infra/kojibot/bot/matrix"
	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/bot/web"
	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/commands/alerting"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/kojiapi"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/messaging"
	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/commands/watch"
	"github.com/fedora-infra/kojibot/config"
)

// validate checks the configuration, including that acl.commands names
// only commands that exist.
func validate(cfg *config.Config) error {
	err := cfg.ValidateWith(commands.Commands().Names())
	if cfg.Outage.TemplateFile != "" {
		if _, terr := outage.LoadTemplate(cfg.Outage.TemplateFile); terr != nil {
			err = errors.Join(err, &config.KeyError{Key: "outage.template_file", Problem: terr.Error()})
		}
	}
	return err
}

// configWarnings are check-config's warnings: settings that work but that
// an operator probably did not mean.
func configWarnings(cfg *config.Config) []*config.KeyError {
	catalogue := commands.Commands()
	var mutating []string
	for _, name := range catalogue.Names() {
		if s := catalogue.Spec(name); s != nil && s.Tier != commands.AnyIdentified && strings.Contains(name, " ") {
			mutating = append(mutating, name)
		}
	}
	return cfg.Warnings(mutating)
}

// system is everything a running kojibot is made of, below IRC.
type system struct {
	log *slog.Logger
	// db is the Koji database (koji.db); nil when koji.db.dsn is empty.
	db *kojidb.DB
	// hub is Koji's hosts and tasks through the hub's API (koji.hub.url);
	// nil without it.
	hub        *kojiapi.Farm
	dispatcher *commands.Dispatcher
	acl        *acl.Checker
	drafts     outage.Drafts
	template   *outage.Template
	fleet      *fleet.Fleet
	// state is the store: journal, job records, in state.dir or state.dsn.
	state state.Backend
	// samples are the watcher's readings of the mounts, which `disk`
	// reads for the rates.
	samples watch.Samples
	// publisher sends to the message bus (messaging.url); nil without it.
	publisher *messaging.Publisher
	cfg       *config.Config
	// lc releases all of the above, in reverse order (lc.stop).
	lc *lifecycle

	shutdownOnce sync.Once
}

// build opens the Koji hub's client (koji.hub.url) and the Koji DB (koji.db;
// both lazily: a hub or database down at start is reported by the
// commands, not fatal), the ACL and the dispatcher. With the hub, every
// host read and change and `override` go through it, and the database
// serves `connections` alone.
func build(ctx context.Context, cfg *config.Config, stderr io.Writer, observe func(command, result string, d time.Duration)) (_ *system, err error) {
	log, logCloser, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return nil, err
	}
	lc := &lifecycle{log: log}
	lc.push("log", func() { logCloser.Close() })
	defer func() {
		if err != nil { // whatever was acquired is released, in reverse
			lc.stop()
		}
	}()
	var db *kojidb.DB
	if cfg.Koji.DB.DSN.Reveal() != "" {
		if db, err = kojidb.Open(ctx, cfg.Koji.DB.DSN.Reveal(), cfg.Koji.User, log.With("component", "kojidb"),
			kojidb.WithHubTimeZone(cfg.Koji.DBTimezone)); err != nil {
			return nil, fmt.Errorf("koji database: %w", err)
		}
		lc.push("koji database", db.Close)
	}
	var farm *kojiapi.Farm
	if cfg.Koji.Hub.URL != "" {
		client, err := kojiapi.New(kojiapi.OptionsFrom(cfg, log.With("component", "kojihub")))
		if err != nil {
			return nil, fmt.Errorf("koji hub: %w", err)
		}
		// Logs out every session.
		lc.push("koji hub", client.Close)
		farm = kojiapi.NewFarm(client, kojiapi.FarmOptions{ActAsCaller: cfg.Koji.Hub.ActAsCaller, WebURL: cfg.Koji.WebURL})
	}
	auth, err := fasjsonAuthenticator(cfg.ACL, log.With("component", "acl"))
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	checker, err := acl.New(cfg.ACL, acl.Options{HTTPClient: &http.Client{}, Authenticator: auth, Logger: log.With("component", "acl"),
		MatrixFASServer: cfg.Matrix.FASServer})
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	tmpl := outage.Builtin()
	if cfg.Outage.TemplateFile != "" {
		if tmpl, err = outage.LoadTemplate(cfg.Outage.TemplateFile); err != nil {
			return nil, fmt.Errorf("outage.template_file: %w", err)
		}
	}
	sys := &system{log: log, db: db, hub: farm, acl: checker, template: tmpl, cfg: cfg, lc: lc}
	deps := commands.Deps{
		Config:   cfg,
		ACL:      checker,
		Template: tmpl,
		Audit:    log.With("log", "audit"),
		Log:      log,
		Observe:  observe,
	}
	// Interfaces get no typed nil: a missing database or hub stays nil.
	if db != nil {
		deps.DB = db
	}
	if farm != nil {
		deps.Hub, deps.Tagger = farm, farm
	}
	if len(cfg.Hosts) > 0 {
		// Reads ssh.key_file, which may be root's alone.
		if sys.fleet, err = fleet.New(cfg.SSH, cfg.Hosts, log.With("component", "fleet")); err != nil {
			return nil, fmt.Errorf("ssh: %w", err)
		}
		lc.push("ssh connections", sys.fleet.Close)
		deps.Fleet = sys.fleet
	}
	// Started as root (exec, to read the secrets): from here on, run as
	// the owner of state.dir, so that the store stays that user's.
	// With state.dsn there is no state.dir to own.
	stateKey := "state.dir"
	if cfg.State.DSN != "" {
		stateKey = "state.dsn"
	} else if err := becomeStateOwner(cfg.State.Dir, log); err != nil {
		return nil, fmt.Errorf("state.dir: %w", err)
	}
	// The journal is what makes a crash safe: without it, nothing runs.
	// run and exec open the same store.
	if sys.state, err = state.OpenFor(ctx, cfg.State.Dir, cfg.State.DSN.Reveal()); err != nil {
		return nil, fmt.Errorf("%s: %w", stateKey, err)
	}
	lc.push("state store", func() {
		if err := sys.state.Close(); err != nil {
			log.Error("closing the state store", "error", err)
		}
	})
	deps.State = sys.state
	// Outage drafts are kept in the store: a restarted bot, or a replica
	// taking over, still serves them, and exec's are run's.
	sys.drafts = outage.NewKept(sys.state, 0, nil, log.With("component", "outage"))
	deps.Drafts = sys.drafts
	// The mounts' readings are kept in the store: a restarted bot, or a
	// replica taking over, predicts at once; exec's `disk` shows the rate
	// from the readings run's watcher took.
	sys.samples = watch.NewStoredSamples(sys.state, watch.SampleKeep, cfg.Watch.Interval, log.With("component", "watch"))
	deps.Samples = sys.samples
	// The message bus: messages wait in the store's outbox for the broker.
	// Only run (its leader) sends them; exec's wait there for it, so that
	// two processes never send the same message.
	if cfg.Messaging.URL != "" {
		sys.publisher = messaging.New(cfg.Messaging, sys.state, log.With("component", "messaging"))
		deps.Bus = sys.publisher
	}
	sys.dispatcher = commands.New(deps)
	// Jobs get shutdown_timeout to restore what they stopped.
	lc.push("jobs", sys.shutdownJobs)
	return sys, nil
}

// runBot runs the IRC bot, the watcher and the HTTP server until ctx ends.
func runBot(ctx context.Context, cfg *config.Config, stderr io.Writer) error {
	reg := prometheus.NewRegistry()
	metrics := web.NewMetrics(reg)
	sys, err := build(ctx, cfg, stderr, metrics.CommandDone)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return exitError{1}
	}
	defer sys.lc.stop()
	if sys.publisher != nil {
		sys.publisher.Dropped = web.NewMessagingDropped(reg)
	}
	if sys.fleet != nil {
		sys.fleet.ObserveDials(metrics.SSHDial)
		sys.fleet.ObserveDiskFallback(metrics.DiskFallback)
	}
	// With state.dsn, several `kojibot run` may share the store: one leads
	// and acts, the others wait as standbys until it is gone.
	var leader *state.Leader
	if st, ok := sys.state.(*state.Store); ok && cfg.State.DSN != "" {
		if leader, err = awaitLeadership(ctx, sys, st); err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return exitError{1}
		}
		if leader == nil { // stopped while a standby
			return nil
		}
		defer leader.Resign()
	}
	// Before serving anything: start what a crashed kojibot left stopped.
	recovered := recoverJournal(ctx, sys)
	// Say at start whether koji.user may edit hosts (kojidb logs the
	// answer); every write checks again. A database that is down is not
	// fatal: the commands report it.
	// Through the hub, Koji checks every call itself (check-config --probe
	// says what the bot's Koji user may do).
	if sys.hub == nil && sys.db != nil {
		go func(ctx context.Context) {
			cctx, cancel := context.WithTimeout(ctx, kojidb.CallTimeout)
			defer cancel()
			if _, err := sys.db.CheckKojiUser(cctx); err != nil && !errors.Is(err, kojidb.ErrNotAllowed) && ctx.Err() == nil {
				sys.log.Warn("could not check koji.user at start", "error", err)
			}
		}(ctx) // ctx is re-bound below: pass today's value, not the variable
	}
	// Through the hub: one call at start, so that the log says at once
	// which Koji answers (the client logs its Koji-Version header).
	if sys.hub != nil {
		go func(ctx context.Context) {
			cctx, cancel := context.WithTimeout(ctx, kojidb.CallTimeout)
			defer cancel()
			if err := sys.hub.Ping(cctx); err != nil && ctx.Err() == nil {
				sys.log.Warn("the Koji hub did not answer at start", "error", err)
			}
		}(ctx)
	}
	var srv *web.Server
	var opts []irc.Option
	if cfg.HTTP.Listen != "" && cfg.HTTP.PublicURL != "" {
		// Long replies are offered as a link to the HTTP server.
		opts = append(opts, irc.WithLongOutput(func(text string) (string, bool) { return srv.Store(text) }))
	}
	// Account names are compared the way the network says (CASEMAPPING).
	opts = append(opts, irc.WithCaseMapping(sys.acl.SetCaseMapping))
	// Every transport limits its callers by commands.user_rate and
	// commands.user_burst, each with buckets of its own.
	opts = append(opts, irc.WithUserLimits(bot.NewUserLimits(cfg.Commands.UserRate, cfg.Commands.UserBurst)))
	// Either transport may be left out (irc.server empty, or no matrix
	// section); check-config requires one.
	var b *irc.Bot
	if cfg.IRC.Server != "" {
		if b, err = irc.New(cfg.IRC, sys.dispatcher, sys.log.With("component", "bot"), opts...); err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return exitError{1}
		}
	}
	// Matrix, beside IRC, through the same dispatcher.
	var mb *matrix.Bot
	if cfg.Matrix.Enabled() {
		mopts := matrix.Options{Config: cfg.Matrix, Handler: sys.dispatcher, State: sys.state,
			Log: sys.log.With("component", "matrix"), Limits: bot.NewUserLimits(cfg.Commands.UserRate, cfg.Commands.UserBurst),
			// A sender linked to a FAS user has a rate bucket of its own.
			Identify: func(ctx context.Context, sender string) bool {
				_, err := sys.acl.Resolve(ctx, acl.Caller{Account: sender, Matrix: true})
				return err == nil
			}}
		if cfg.HTTP.Listen != "" && cfg.HTTP.PublicURL != "" {
			mopts.LongOutput = func(text string) (string, bool) { return srv.Store(text) }
		}
		if mb, err = matrix.New(mopts); err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return exitError{1}
		}
	}
	// notifyAll tells every notify place: the IRC channel and the Matrix room.
	notifyAll := func(m reply.Message) {
		if b != nil {
			b.Notify("", m)
		}
		if mb != nil {
			mb.Notify(m)
		}
	}
	// Queued until the bot is connected and has joined.
	for _, line := range recovered {
		notifyAll(reply.Text(reply.Info, line))
	}
	webOpts := web.Options{
		Listen: cfg.HTTP.Listen, PublicURL: cfg.HTTP.PublicURL, Jobs: sys.dispatcher,
		Drafts: sys.drafts, Template: sys.template, Gatherer: reg, Log: sys.log.With("component", "http"),
		Samples: sys.samples, ChartMounts: sharedCharts(cfg),
	}
	if sys.db != nil {
		webOpts.DB = sys.db
	}
	// The watcher is made below; /status asks it for its alerts once it is.
	var watcher atomic.Pointer[watch.Watcher]
	if cfg.HTTP.StatusPage {
		webOpts.StatusPage = true
		webOpts.Status = web.StatusSource{StaleAfter: cfg.Watch.StaleAfter, FullPercent: cfg.Disk.FullPercent,
			Mounts: statusMounts(cfg, sys.dispatcher.Builders()), Running: sys.dispatcher.RunningJobs,
			Firing: func() []string {
				if w := watcher.Load(); w != nil {
					return w.Firing()
				}
				return nil
			}}
		if sys.hub != nil {
			webOpts.Status.Hosts = sys.hub
		} else if sys.db != nil {
			webOpts.Status.Hosts = sys.db
		}
	}
	if sys.hub != nil {
		webOpts.Hub = sys.hub
	}
	if sys.publisher != nil {
		webOpts.Messaging = sys.publisher
	}
	// connected says whether the bot is up where it serves: on IRC, in
	// every configured channel (systemd's READY waits for it).
	connected := func() bool { return true }
	if b != nil {
		webOpts.IRC = b
		connected = b.Joined
	}
	if mb != nil {
		webOpts.Matrix = mb
		if b == nil {
			connected = mb.Connected
		}
	}
	srv = web.New(webOpts)
	if cfg.HTTP.Listen != "" {
		if err := srv.Start(); err != nil {
			fmt.Fprintln(stderr, "error: http.listen:", err)
			return exitError{1}
		}
		sys.lc.push("http server", func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
	}
	watchDeps := watch.Deps{
		Drafts: sys.drafts, Builders: sys.dispatcher.Builders, Metrics: metrics, Samples: sys.samples,
		Notify: func(m reply.Message) bool { notifyAll(m); return true },
		Log:    sys.log.With("component", "watch"),
	}
	if sys.publisher != nil {
		watchDeps.Bus = sys.publisher
	}
	// Without koji.db the connections watch is off; with the hub, the
	// stale watch reads the hosts through it.
	if sys.db != nil {
		watchDeps.DB = sys.db
	}
	if sys.hub != nil {
		watchDeps.Hub = sys.hub
	}
	if sys.fleet != nil {
		watchDeps.Disk = sys.fleet
	}
	w := watch.New(cfg, watchDeps)
	watcher.Store(w)
	// systemd (Type=notify): READY=1 once on IRC and in its channels, STOPPING=1 on SIGTERM.
	sdNotify := newSystemdNotifier(sys.log.With("component", "systemd"))
	sys.log.Info("kojibot starting", "version", versionString(), "transports", strings.Join(transportNames(cfg), ", "),
		"irc", cfg.IRC.Server, "matrix", cfg.Matrix.UserID, "http", cfg.HTTP.Listen)
	// Everything that runs, under one group: the first to fail for good
	// (IRC refusing the bot's login) ends the others, as SIGTERM does.
	g, gctx := errgroup.WithContext(ctx)
	if leader != nil {
		// A leader whose lock connection broke stops acting at once: its
		// jobs are cancelled (they restore what they stopped, as far as
		// the fencing lets them write), and everything below ends: IRC
		// and Matrix are left, the watcher stops.
		g.Go(func() error {
			select {
			case <-leader.Lost():
				sys.log.Error("leadership lost: stopping at once", "term", leader.Term)
				go sys.shutdownJobs()
				return errLostLeadership
			case <-gctx.Done():
				return nil
			}
		})
	}
	g.Go(func() error { w.Run(gctx); return nil })
	if sys.publisher != nil {
		g.Go(func() error { sys.publisher.Run(gctx); return nil })
	}
	// An exec (or another run) that dies while this one is up leaves its
	// records to be claimed: look every watch interval, restore what it
	// stopped and say so where the watcher speaks.
	g.Go(func() error {
		claimOrphansEvery(gctx, sys, w.Interval(), func(line string) { notifyAll(reply.Text(reply.Info, line)) })
		return nil
	})
	g.Go(func() error {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			metrics.SetIRCConnected(b != nil && b.Connected())
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	g.Go(func() error { sdNotify.run(gctx, connected, cfg.IRC.Server); return nil })
	if mb != nil {
		g.Go(func() error {
			// Matrix keeps retrying by itself; it never ends the bot.
			if err := mb.Run(gctx); err != nil {
				sys.log.Error("matrix stopped", "error", err)
			}
			return nil
		})
	}
	if b != nil {
		g.Go(func() error {
			err := b.Run(gctx)
			if err == nil && gctx.Err() == nil {
				err = errors.New("irc: the bot stopped")
			}
			return err
		})
	}
	err = g.Wait()
	// SIGTERM or SIGINT (or a fatal bot error): no more commands; the
	// running jobs are cancelled and restore what they stopped, within
	// shutdown_timeout.
	sys.shutdownJobs()
	if err != nil && ctx.Err() == nil {
		sys.log.Error("bot stopped", "error", err)
		fmt.Fprintln(stderr, "error:", err)
		return exitError{1}
	}
	return nil
}

// terminalOutput prints replies on a terminal and remembers the worst kind.
type terminalOutput struct {
	mu    sync.Mutex
	w     io.Writer
	worst commands.Kind
	seen  bool
}

// Send implements commands.Output: the message's text lines.
func (o *terminalOutput) Send(m reply.Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, line := range m.TextLines() {
		fmt.Fprintln(o.w, line)
	}
	if m.Kind.Failed() {
		if !o.seen || m.Kind == commands.Denied {
			o.worst = m.Kind
		}
		o.seen = true
	}
}

// exitCode is exec's documented status for the replies seen.
func (o *terminalOutput) exitCode() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case !o.seen:
		return 0
	case o.worst == commands.Denied:
		return 3
	}
	return 1
}

// runExec runs one command as fasUser and returns exec's exit status.
func runExec(ctx context.Context, cfg *config.Config, fasUser string, yes bool, args []string,
	stdin io.Reader, stdout, stderr io.Writer) int {
	// Who started exec, before build switches a root exec to the owner
	// of state.dir.
	unixUser := localUser()
	sys, err := build(ctx, cfg, stderr, nil)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	defer sys.lc.stop()
	// Before anything else: start what a crashed kojibot left stopped.
	for _, line := range recoverJournal(ctx, sys) {
		fmt.Fprintln(stderr, line)
	}
	if ctx.Err() != nil {
		return 1
	}
	out := &terminalOutput{w: stdout}
	answers := bufio.NewReader(stdin)
	loginUID, loginName := loginUser(procLoginUID)
	req := commands.Request{Transport: commands.TransportExec, TrustedFASUser: fasUser, Place: "exec", Text: strings.Join(args, " "),
		LocalUser: unixUser, SudoUser: os.Getenv("SUDO_USER"),
		LoginUID: loginUID, LoginUser: loginName,
		AutoConfirm: func(plan reply.Message) bool {
			fmt.Fprintln(stdout, plan.String())
			if yes {
				fmt.Fprintln(stdout, "(--yes: going ahead)")
				return true
			}
			fmt.Fprint(stdout, "go ahead? [y/N] ")
			// An interrupt while waiting for the answer is a no.
			answer := make(chan string, 1)
			go func() { line, _ := answers.ReadString('\n'); answer <- line }()
			var line string
			select {
			case line = <-answer:
			case <-ctx.Done():
				fmt.Fprintln(stdout)
				return false
			}
			return strings.EqualFold(strings.TrimSpace(line), "y") || strings.EqualFold(strings.TrimSpace(line), "yes")
		}}
	sys.dispatcher.Handle(ctx, req, out)
	// Jobs (clean-up, restart, ...) run in the background: wait for them;
	// on SIGINT or SIGTERM, cancel them and wait while they restore what
	// they stopped.
	waitJobs(ctx, sys)
	return out.exitCode()
}

// localUser names the Unix user running kojibot exec, for the audit record:
// the login name of the real uid, or the uid itself when it has none.
func localUser() string {
	u, err := user.LookupId(strconv.Itoa(os.Getuid()))
	if err != nil {
		return "uid " + strconv.Itoa(os.Getuid())
	}
	return u.Username
}

// transportNames names the transports cfg runs: "irc" when irc.server is
// set, "matrix" when matrix.user_id is.
func transportNames(cfg *config.Config) []string {
	var names []string
	if cfg.IRCEnabled() {
		names = append(names, "irc")
	}
	if cfg.Matrix.Enabled() {
		names = append(names, "matrix")
	}
	return names
}

// sharedCharts names the shared mounts whose fill a draft's page charts.
func sharedCharts(cfg *config.Config) []web.Mount {
	var out []web.Mount
	if cfg.Disk.SharedFrom == "" {
		return nil
	}
	for _, m := range cfg.Disk.SharedMounts {
		out = append(out, web.Mount{Check: alerting.CheckName(watch.KindShared, cfg.Disk.SharedFrom, m),
			Label: "shared mount " + m + " on " + cfg.Disk.SharedFrom})
	}
	return out
}

// statusMounts names the mounts /status shows: each builder's
// (disk.mounts), then the shared ones.
func statusMounts(cfg *config.Config, builders []string) []web.Mount {
	var out []web.Mount
	for _, b := range builders {
		for _, m := range cfg.Disk.Mounts {
			out = append(out, web.Mount{Check: alerting.CheckName(watch.KindDisk, b, m), Label: m + " on " + b})
		}
	}
	return append(out, sharedCharts(cfg)...)
}
