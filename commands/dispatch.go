package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/messaging"
	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/commands/redact"
	"github.com/fedora-infra/kojibot/commands/watch/trend"
	"github.com/fedora-infra/kojibot/config"
)

// Deps are what the dispatcher and its handlers are built from.
type Deps struct {
	// Config is a validated configuration (nil: config.Default()); the
	// handlers fill in no defaults of their own.
	Config *config.Config
	// DB is the Koji database (koji.db); nil when it is not configured,
	// which leaves `connections` unavailable.
	DB KojiDB
	// Hub, when set (koji.hub.url), is the way to Koji's hosts: every
	// host read and change goes through it, and DB serves `connections`
	// alone.
	Hub KojiHosts
	// Tagger, when set (koji.hub.url), runs `override` through the hub's
	// tagBuild instead of the koji CLI on koji.admin_host over SSH.
	Tagger KojiTagger
	ACL    Authorizer
	// Fleet reaches the hub, builders and xen hosts; nil when ssh is not set up.
	Fleet Fleet
	// Drafts keeps outage announcement drafts; nil: in State when it is
	// set (outage.Kept), else in memory.
	Drafts outage.Drafts
	// Template renders drafts; nil means the built-in one.
	Template *outage.Template
	// Observe, when set, is told every command's result and duration (metrics).
	Observe func(command, result string, d time.Duration)
	// Audit receives one record per decision and per result.
	Audit *slog.Logger
	// Log receives operational messages (panics, failures in detail).
	Log *slog.Logger
	// State is the bot's own store (journal, job records); nil runs jobs
	// without a journal and with ids from memory (unit tests).
	State StateStore
	// Samples, when set, are the watcher's readings of the mounts (a
	// *watch.MemorySamples shared with it): `disk <host>` and `disk shared`
	// then say how fast each mount fills.
	Samples MountSamples
	// Bus, when set (messaging.url), is told the result of every command
	// that changes something, and every outage draft.
	Bus messaging.Bus
	Now func() time.Time
}

// MountSamples reads the watcher's readings of the mounts, as
// *watch.MemorySamples does.
type MountSamples interface {
	// Recent returns the readings of the mount checked under check
	// ("disk:<host>:<mount>", "shared:<host>:<mount>") taken at or after
	// since, oldest first.
	Recent(check string, since time.Time) []trend.Sample
}

// Dispatcher parses a line against the catalogue, asks the ACL, runs the
// handler and audits both the decision and the result. It is the only place
// permissions are checked.
type Dispatcher struct {
	deps      Deps
	catalogue *Catalogue
	confirms  *confirmations
	jobs      *jobTable
	journal   journal
	stop      context.CancelFunc
	// base ends with Close: the background work of the dispatcher.
	base context.Context
	// polling runs pollCancels, with a state store, and restoreLater's
	// retries, until stop.
	polling sync.WaitGroup
}

// New builds the dispatcher and its catalogue from deps.
func New(deps Deps) *Dispatcher {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Audit == nil {
		deps.Audit = deps.Log
	}
	if deps.Config == nil {
		deps.Config = config.Default()
	}
	if deps.Bus == nil {
		deps.Bus = messaging.Nop{}
	}
	if deps.Drafts == nil {
		if rec, ok := deps.State.(outage.Records); ok {
			deps.Drafts = outage.NewKept(rec, 0, deps.Now, deps.Log)
		} else {
			deps.Drafts = outage.NewStore(0, deps.Now)
		}
	}
	if deps.Template == nil {
		deps.Template = outage.Builtin()
	}
	base, stop := context.WithCancel(context.Background())
	d := &Dispatcher{deps: deps, stop: stop, base: base,
		confirms: &confirmations{pending: map[string]*pendingAction{}, now: deps.Now},
		jobs:     newJobTable(base, deps.Now, deps.State, deps.Log),
		journal:  journal{open: map[string][]journalEntry{}}}
	d.catalogue = Commands()
	if deps.State != nil {
		every := cancelPoll // read once, here: tests change it
		d.polling.Add(1)
		go func() { defer d.polling.Done(); d.pollCancels(base, every) }()
	}
	return d
}

// Close cancels every running job and waits for them to restore what they
// stopped.
func (d *Dispatcher) Close() {
	d.stop()
	d.Wait()
	d.polling.Wait()
}

// Catalogue returns the dispatcher's command catalogue.
func (d *Dispatcher) Catalogue() *Catalogue { return d.catalogue }

// Call is one running command, handed to its handler.
type Call struct {
	*Parsed
	Req     Request
	FASUser string
	Log     *slog.Logger
	// Job is the job this call runs in, or nil.
	Job *Job

	d      *Dispatcher
	ctx    context.Context
	out    Output
	mu     sync.Mutex
	failed bool
	// said are the lines answered so far, for the message bus.
	said []string
	// jobStarted says the call started a job, which announces itself.
	jobStarted bool
}

// Reply sends an Info message of text to the caller.
func (c *Call) Reply(format string, a ...any) { c.Say(reply.Text(Info, fmt.Sprintf(format, a...))) }

// Send sends a message of text of the given kind to the caller.
func (c *Call) Send(kind Kind, text string) { c.Say(reply.Text(kind, text)) }

// Say sends a structured message to the caller; one of a failing kind
// marks the command as failed.
func (c *Call) Say(m reply.Message) {
	if m.Kind.Failed() {
		c.mu.Lock()
		c.failed = true
		c.mu.Unlock()
	}
	c.mu.Lock()
	if len(c.said) < maxSaid {
		c.said = append(c.said, m.TextLines()...)
	}
	c.mu.Unlock()
	c.out.Send(m)
}

// Handle runs one command line from req and sends its replies to out.
func (d *Dispatcher) Handle(ctx context.Context, req Request, out Output) {
	start := d.deps.Now()
	if req.Received.IsZero() {
		req.Received = start
	}
	// A command that is not a job has commands.timeout to answer; a job
	// runs on its own context once started.
	timeout := d.deps.Config.Commands.Timeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log := d.deps.Audit.With(append([]any{"transport", transport(req), "account", req.Account}, placeAttrs(req)...)...)
	if req.TrustedFASUser != "" {
		log = log.With("as_fas_user", req.TrustedFASUser)
	}
	if req.LocalUser != "" {
		log = log.With("unix_user", req.LocalUser)
	}
	if req.LoginUID != "" {
		log = log.With("login_uid", req.LoginUID)
	}
	if req.LoginUser != "" {
		log = log.With("login_user", req.LoginUser)
	}
	if req.SudoUser != "" {
		// Anyone can set SUDO_USER: the login uid above is what the
		// kernel vouches for.
		log = log.With("sudo_user_claimed", req.SudoUser)
	}
	words, err := Tokenize(req.Text)
	if err != nil {
		sendText(out, Error, err.Error())
		log.Info("rejected", "result", "error", "reason", err.Error())
		return
	}
	if len(words) == 0 {
		words = []string{"help"}
	}
	spec, used := d.catalogue.Lookup(words)
	if spec == nil {
		sendText(out, Error, d.unknownCommand(words[0])+" (try help)")
		log.Info("rejected", "result", "error", "reason", "unknown command")
		return
	}
	log = log.With("command", spec.Name, "args", words[used:])
	dec := d.authorize(ctx, req, spec)
	log = log.With("fas_user", dec.FASUser, "rule", dec.Rule)
	if !dec.Allowed {
		sendText(out, Denied, redact.Text(dec.Reason)) // FASJSON's failure may name its address; the audit record has it whole
		log.Info("decision", "allowed", false, "reason", dec.Reason, "duration", d.deps.Now().Sub(start))
		return
	}
	log.Info("decision", "allowed", true)
	parsed, err := Parse(spec, words[used:])
	if err != nil {
		sendText(out, Usage, err.Error()+"; usage: "+spec.Usage())
		log.Info("result", "result", "error", "reason", err.Error(), "duration", d.deps.Now().Sub(start))
		return
	}
	if spec.NeedsFleet && d.deps.Fleet == nil && !d.throughHub(spec) {
		const msg = "SSH is not configured (ssh: and hosts: in the configuration); nothing was done"
		sendText(out, Error, msg)
		log.Info("result", "result", "error", "reason", msg, "duration", d.deps.Now().Sub(start))
		return
	}
	call := &Call{Parsed: parsed, Req: req, FASUser: dec.FASUser, out: out, d: d, ctx: ctx,
		Log: d.deps.Log.With("command", spec.Name, "account", req.Account)}
	err = d.run(ctx, call)
	if !spec.Destructive && !call.dryRun() {
		d.announce(call, nil, err)
	}
	result := "ok"
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		result = "error"
		sendText(out, Error, fmt.Sprintf("%s did not finish within %s (commands.timeout); nothing more is done", spec.Name, timeout))
	case err != nil:
		result = "error"
		sendText(out, Error, d.userMessage(call, err))
	case call.failed:
		result = "error"
	}
	took := d.deps.Now().Sub(start)
	if d.deps.Observe != nil {
		d.deps.Observe(spec.Name, result, took)
	}
	attrs := []any{"result", result, "duration", took}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	log.Info("result", attrs...)
}

// sendText sends out a text message of kind.
func sendText(out Output, kind Kind, text string) { out.Send(reply.Text(kind, text)) }

// run calls the handler, turning a panic into an error.
func (d *Dispatcher) run(ctx context.Context, c *Call) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.Log.Error("command panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error in %s", c.Spec.Name)
		}
	}()
	return c.Spec.Run(d, ctx, c)
}

// unknownCommand says a command does not exist, with the nearest names.
func (d *Dispatcher) unknownCommand(name string) string {
	msg := fmt.Sprintf("unknown command %s", quoteShort(name))
	if near := closest(strings.ToLower(name), d.topNames(), 2); len(near) > 0 {
		msg += "; did you mean " + strings.Join(near, " or ") + "?"
	}
	return msg
}

// topNames lists the first word of every command, for suggestions.
func (d *Dispatcher) topNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range d.catalogue.Names() {
		top, _, _ := strings.Cut(n, " ")
		if !seen[top] {
			seen[top] = true
			out = append(out, top)
		}
	}
	return out
}

// MatrixPlacePrefix starts the place of a request from a Matrix room
// ("matrix:!id:server"), so that places of the two transports never meet.
const MatrixPlacePrefix = "matrix:"

// transport names where a request came from: its Transport. A request
// that does not say is taken for IRC's, the transport whose identities
// are the narrowest (services accounts, never a Matrix id).
func transport(r Request) string {
	switch r.Transport {
	case TransportMatrix, TransportExec:
		return string(r.Transport)
	}
	return string(TransportIRC)
}

// authorize asks the ACL whether req's caller may run spec: its
// acl.commands rule, or without one its Tier. It is the only place that
// asks: the gate for every command line, and again confirm (for the action
// confirmed), cancel (for the job's command) and help and whoami (for
// what they list).
func (d *Dispatcher) authorize(ctx context.Context, req Request, spec *Spec) acl.Decision {
	return d.deps.ACL.Authorize(ctx, callerOf(req), spec.Name, spec.Tier == AnyIdentified)
}

// callerOf is who the ACL is asked about: a Matrix caller's account is the
// sender's Matrix id, resolved by the Matrix rules.
func callerOf(r Request) acl.Caller {
	return acl.Caller{Account: r.Account, FASUser: r.TrustedFASUser, Matrix: r.Transport == TransportMatrix}
}

// placeAttrs are the audit attributes of r's place: "place", and
// "place_name" (a Matrix room's alias or name) when it has one.
func placeAttrs(r Request) []any {
	if r.PlaceName != "" {
		return []any{"place", place(r), "place_name", r.PlaceName}
	}
	return []any{"place", place(r)}
}

func place(r Request) string {
	if r.Place == "" {
		return "private"
	}
	return r.Place
}
