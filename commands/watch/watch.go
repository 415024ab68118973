// Package watch is the farm watcher: every watch.interval it
// checks the builders' and the shared mounts, stale builders and the Koji
// database's connection count, and says so in the notify channel when a
// check starts failing, while it fails (every watch.repeat) and when it
// clears, as commands/alerting decides. A shared mount that fills up gets
// an outage draft of its own.
package watch

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/alerting"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/messaging"
	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/commands/watch/trend"
	"github.com/fedora-infra/kojibot/config"
)

// DiskReader reads the usage of mounts on a host, as *fleet.Fleet does.
type DiskReader interface {
	// DiskUsage returns one Usage per path it could read, in order; a path
	// it could not read is named in the error returned with the others.
	DiskUsage(ctx context.Context, host string, paths []string) ([]fleet.Usage, error)
}

// HostReader reads Koji's build hosts, as *kojiapi.Farm (through the hub)
// and *kojidb.DB do.
type HostReader interface {
	// Hosts returns every Koji build host.
	Hosts(ctx context.Context) ([]kojidb.Host, error)
}

// ConnCounter counts a database role's connections, as *kojidb.DB does.
type ConnCounter interface {
	// ConnectionCount returns role's client connections and
	// max_connections.
	ConnectionCount(ctx context.Context, role string) (count, max int, err error)
}

// FarmDB is what the watcher reads of the Koji database, as *kojidb.DB
// does.
type FarmDB interface {
	HostReader
	ConnCounter
}

// Observer receives the watcher's metrics, e.g. *web.Metrics.
type Observer interface {
	// CheckRan counts one run of a check of kind (a Kind* constant) with
	// its result (a Result* constant).
	CheckRan(kind, result string)
	// SetFiring sets how many checks are firing.
	SetFiring(n int)
}

// The kinds of checks, as given to Observer.CheckRan and used as the first
// part of the check names that Firing returns.
const (
	// KindDisk: a builder's mounts (disk.mounts) against disk.full_percent.
	KindDisk = "disk"
	// KindShared: the shared mounts (disk.shared_mounts on
	// disk.shared_from) against disk.full_percent.
	KindShared = "shared"
	// KindStale: enabled Koji hosts that have not checked in within
	// watch.stale_after.
	KindStale = "stale"
	// KindConnections: the Koji role's database connections against
	// watch.connections_percent of max_connections.
	KindConnections = "connections"
)

// The results of a check run, as given to Observer.CheckRan.
const (
	// ResultOK: the check ran and nothing fails.
	ResultOK = "ok"
	// ResultFailing: the check ran and something is at or over its
	// threshold (or stale).
	ResultFailing = "failing"
	// ResultError: the check could not run (host unreachable, database
	// down), wholly or in part.
	ResultError = "error"
)

// Hysteresis is how many percentage points below its threshold a firing
// disk or connections check must fall to clear, so that a value hovering
// at the threshold does not flap.
const Hysteresis = 2.0

// FirstCheckDelay is how long Run waits before its first check (or
// watch.interval, when shorter), giving the bot time to connect first.
const FirstCheckDelay = 15 * time.Second

// Deps are the watcher's collaborators. Disk, DB, Hub and Builders may be
// nil: the checks that need them are then not run.
type Deps struct {
	// Disk reads mounts on builders and on disk.shared_from.
	Disk DiskReader
	// DB reads the Koji database's connection count and, when Hub is nil,
	// Koji's hosts. Nil (no koji.db): the connections check is off.
	DB FarmDB
	// Hub, when set (koji.hub.url), reads Koji's hosts for the stale
	// check instead of DB.
	Hub HostReader
	// Drafts keeps the outage drafts made for full shared mounts; nil
	// means no drafts are made.
	Drafts outage.Drafts
	// Notify sends one notification to the notify places (the IRC
	// channel, the Matrix room) and reports whether it was sent or queued.
	// Only then is the notification recorded; one that was not is
	// produced again by the next check. Nil only logs.
	Notify func(m reply.Message) bool
	// Builders returns the names (hosts keys) of the builders whose
	// mounts are checked, at every check.
	Builders func() []string
	// Metrics, when set, counts the checks and the firing alerts.
	Metrics Observer
	// Samples keeps the mounts' readings for the fill predictions (nil: a
	// MemorySamples keeping SampleKeep at watch.interval).
	Samples Samples
	// Log receives the watcher's log (nil: discarded).
	Log *slog.Logger
	// Bus, when set (messaging.url), is told every alert, reminder and
	// clear that went out, and every outage draft made.
	Bus messaging.Bus
}

// settings are the configuration keys the watcher reads, from a validated
// Config (config.Default holds the defaults).
type settings struct {
	interval, staleAfter, repeat time.Duration
	fullPercent, connPercent     float64
	predictWithin                time.Duration
	mounts                       []string
	sharedMounts                 []string
	sharedFrom                   string
	escalate, to                 []string
	dbUser                       string
	publicURL                    string
	commandPrefix                string
	parallel                     int
}

func newSettings(cfg *config.Config) settings {
	return settings{
		interval:      cfg.Watch.Interval,
		staleAfter:    cfg.Watch.StaleAfter,
		repeat:        cfg.Watch.Repeat,
		fullPercent:   cfg.Disk.FullPercent,
		predictWithin: cfg.Disk.PredictWithin,
		connPercent:   cfg.Watch.ConnectionsPercent,
		mounts:        slices.Clone(cfg.Disk.Mounts),
		sharedMounts:  slices.Clone(cfg.Disk.SharedMounts),
		sharedFrom:    cfg.Disk.SharedFrom,
		escalate:      slices.Clone(cfg.Disk.Escalate),
		to:            slices.Clone(cfg.Outage.To),
		dbUser:        cfg.Koji.DBUser,
		publicURL:     strings.TrimRight(cfg.HTTP.PublicURL, "/"),
		commandPrefix: cfg.IRC.CommandPrefix,
		parallel:      cfg.SSH.Parallel,
	}
}

// Watcher runs the checks and owns their notification state. It is safe
// for concurrent use; checks run one cycle at a time.
type Watcher struct {
	set     settings
	deps    Deps
	log     *slog.Logger
	tracker *alerting.Tracker

	cycle sync.Mutex // held for a whole CheckOnce; guards the fields below
	// known are the check names observed (or deliberately kept) in the
	// last cycle; a name that drops out (a builder removed from the
	// configuration, a host deleted from Koji) is forgotten.
	known map[string]bool
	// pending are the drafts made for a shared mount's Firing that was not
	// sent yet, reused when it is retried so that one failure makes one
	// draft.
	pending map[string]outage.Draft
	// drafts are the draft ids of the shared mounts that fire.
	drafts map[string]string
}

// New returns a Watcher for cfg's disk, watch, koji.db_user, outage.to and
// http.public_url keys and deps. cfg is a validated Config: New fills in
// no defaults. It starts nothing: call Run.
func New(cfg *config.Config, deps Deps) *Watcher {
	if cfg == nil {
		cfg = config.Default()
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	log := deps.Log.With("component", "watch")
	if deps.Notify == nil {
		deps.Notify = func(m reply.Message) bool {
			log.Info("notification (no channel)", "text", m.String())
			return true
		}
	}
	set := newSettings(cfg)
	if deps.Bus == nil {
		deps.Bus = messaging.Nop{}
	}
	if deps.Samples == nil {
		deps.Samples = NewMemorySamples(SampleKeep, set.interval)
	}
	return &Watcher{
		set:     set,
		deps:    deps,
		log:     log,
		tracker: alerting.NewTracker(alerting.Policy{Repeat: set.repeat, Hysteresis: Hysteresis}, time.Now),
		known:   map[string]bool{},
		pending: map[string]outage.Draft{},
		drafts:  map[string]string{},
	}
}

// Predict returns the fill prediction of the mount checked under check
// (alerting.CheckName(KindDisk, host, mount) or
// alerting.CheckName(KindShared, host, mount)), from its readings of the
// last PredictWindow.
func (w *Watcher) Predict(check string) trend.Prediction {
	return trend.Estimate(w.deps.Samples.Recent(check, time.Now().Add(-PredictWindow)))
}

// Interval returns how often Run checks (watch.interval).
func (w *Watcher) Interval() time.Duration { return w.set.interval }

// Run checks the farm every watch.interval, the first time
// FirstCheckDelay after it starts (or one interval, when shorter), until
// ctx ends. Each round is bounded to the interval; a round that overruns
// delays the next rather than stacking up.
func (w *Watcher) Run(ctx context.Context) {
	w.log.Info("watching the farm", "interval", w.set.interval, "repeat", w.set.repeat,
		"full_percent", w.set.fullPercent, "connections_percent", w.set.connPercent, "stale_after", w.set.staleAfter)
	first := time.NewTimer(min(FirstCheckDelay, w.set.interval))
	defer first.Stop()
	select {
	case <-ctx.Done():
		return
	case <-first.C:
	}
	tick := time.NewTicker(w.set.interval)
	defer tick.Stop()
	for {
		w.CheckOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Firing returns the names of the checks that fire, sorted: "kind:part:…"
// such as "disk:xenbuilder2:/var/lib/mock", "shared:koji-hub:/mnt/koji",
// "stale:ppc3.fedora.redhat.com" or "connections:koji".
func (w *Watcher) Firing() []string {
	return w.tracker.Firing()
}
