package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/bot"
	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/config"
)

// validate checks the configuration, including that acl.commands names
// only commands that exist.
func validate(cfg *config.Config) error {
	names := commands.New(commands.Deps{Config: cfg}).Catalogue().Names()
	return cfg.ValidateWith(names)
}

// system is everything a running kojibot is made of, below IRC.
type system struct {
	log        *slog.Logger
	db         *kojidb.DB
	dispatcher *commands.Dispatcher
	drafts     *outage.Store
	template   *outage.Template
	fleet      *fleet.Fleet
	close      func()
}

// build opens the Koji DB (lazily: a database down at start is reported
// by the commands, not fatal), the ACL and the dispatcher.
func build(ctx context.Context, cfg *config.Config, stderr io.Writer) (*system, error) {
	log, logCloser, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return nil, err
	}
	db, err := kojidb.Open(ctx, cfg.Koji.DB.DSN.Reveal(), cfg.Koji.User, log.With("component", "kojidb"))
	if err != nil {
		logCloser.Close()
		return nil, fmt.Errorf("koji database: %w", err)
	}
	closers := []func(){func() { logCloser.Close() }, db.Close}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	checker, err := acl.New(cfg.ACL, acl.Options{HTTPClient: &http.Client{}, Logger: log.With("component", "acl")})
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("acl: %w", err)
	}
	tmpl := outage.Builtin()
	if cfg.Outage.TemplateFile != "" {
		if tmpl, err = outage.LoadTemplate(cfg.Outage.TemplateFile); err != nil {
			closeAll()
			return nil, fmt.Errorf("outage.template_file: %w", err)
		}
	}
	sys := &system{log: log, db: db, drafts: outage.NewStore(0, nil), template: tmpl}
	deps := commands.Deps{
		Config:   cfg,
		DB:       db,
		ACL:      checker,
		Drafts:   sys.drafts,
		Template: tmpl,
		Audit:    log.With("log", "audit"),
		Log:      log,
	}
	if len(cfg.Hosts) > 0 {
		if sys.fleet, err = fleet.New(cfg.SSH, cfg.Hosts, log.With("component", "fleet")); err != nil {
			closeAll()
			return nil, fmt.Errorf("ssh: %w", err)
		}
		closers = append(closers, sys.fleet.Close)
		deps.Fleet = sys.fleet
	}
	sys.dispatcher = commands.New(deps)
	closers = append(closers, sys.dispatcher.Close)
	sys.close = closeAll
	return sys, nil
}

// runBot runs the IRC bot until ctx ends.
func runBot(ctx context.Context, cfg *config.Config, stderr io.Writer) error {
	sys, err := build(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return exitError{1}
	}
	defer sys.close()
	b, err := bot.New(cfg.IRC, sys.dispatcher, sys.log.With("component", "bot"))
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return exitError{1}
	}
	sys.log.Info("kojibot starting", "version", versionString(), "server", cfg.IRC.Server, "nick", cfg.IRC.Nick)
	if err := b.Run(ctx); err != nil && ctx.Err() == nil {
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

func (o *terminalOutput) Send(kind commands.Kind, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, line := range strings.Split(commands.Format(kind, text), "\n") {
		fmt.Fprintln(o.w, line)
	}
	if kind == commands.Error || kind == commands.Usage || kind == commands.Denied {
		if !o.seen || kind == commands.Denied {
			o.worst = kind
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
	sys, err := build(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	defer sys.close()
	out := &terminalOutput{w: stdout}
	answers := bufio.NewReader(stdin)
	req := commands.Request{FASUser: fasUser, Place: "exec", Text: strings.Join(args, " "),
		AutoConfirm: func(plan string) bool {
			fmt.Fprintln(stdout, commands.Format(commands.Confirm, plan))
			if yes {
				fmt.Fprintln(stdout, "(--yes: going ahead)")
				return true
			}
			fmt.Fprint(stdout, "go ahead? [y/N] ")
			line, _ := answers.ReadString('\n')
			return strings.EqualFold(strings.TrimSpace(line), "y") || strings.EqualFold(strings.TrimSpace(line), "yes")
		}}
	sys.dispatcher.Handle(ctx, req, out)
	// Jobs (clean-up, restart, ...) run in the background: wait for them.
	sys.dispatcher.Wait()
	return out.exitCode()
}
