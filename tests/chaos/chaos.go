// Package chaos is kojibot's fault run: it starts the sandbox farm (a
// real Koji hub and its PostgreSQL, sshd builders with real kojids behind
// a fault proxy each, InspIRCd with Anope, Dendrite) and kojibot on its
// own state store, drives the SOP's jobs through the bot over IRC and
// Matrix, and while each runs injects a fault drawn from a seed: a SIGKILL
// of the bot or of a `kojibot exec`, a PostgreSQL, IRC, homeserver or
// builder restart, a builder's sshd sessions killed, its network cut,
// slowed or reset, a full state filesystem. After each fault it waits
// for the farm to settle and checks, on the machines themselves, that
// every stopped service runs again, nothing outside a confirmed plan was
// deleted, no command ran twice, every caller got one answer, no journal
// record is left open and there was never more than one acting bot.
// `make chaos` and TestChaosShort run it.
package chaos

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// Options is one run.
type Options struct {
	// Seed draws the schedule: the same seed gives the same run.
	Seed int64
	// Faults is how many steps (one fault each) the run has.
	Faults int
	// Store is StorePostgres (state.dsn) or StoreSQLite (state.dir).
	Store string
	// Replicas is how many `kojibot run` processes share the store.
	Replicas int
	// Matrix adds a homeserver (Dendrite) with the ops room, which the
	// bot serves beside IRC: some steps' callers are on Matrix, and the
	// homeserver may be restarted.
	Matrix bool
	// Binary is kojibot; "" builds it.
	Binary string
	// Settle bounds the wait for the farm to settle after a fault.
	Settle time.Duration
	// Out receives the progress and the summary.
	Out io.Writer
	// Dir holds everything; "" makes a temporary directory, removed at
	// the end.
	Dir string
	// Schedule, when set, is run instead of the one Seed draws.
	Schedule []Step
}

// Violation is an invariant found broken.
type Violation struct {
	Step      int
	Invariant string
	Detail    string
}

func (v Violation) String() string {
	return fmt.Sprintf("step %d: %s: %s", v.Step, v.Invariant, v.Detail)
}

// Result is what one step found.
type Result struct {
	Step Step
	// Recovery is from the fault's end (the kill, the restart, the
	// heal) until the farm had settled.
	Recovery time.Duration
	// Outcome is how the caller's command ended: "result", "error",
	// "interrupted" (the bot said so), "silent" (the bot process or
	// the IRC connection went away and no answer came), "not delivered"
	// (sent while no bot was there).
	Outcome    string
	Violations []Violation
	// Note is what the fault did (e.g. exec's pid, the sessions cut).
	Note string
}

// Report is a whole run.
type Report struct {
	Seed     int64
	Store    string
	Replicas int
	Matrix   bool
	Schedule []Step
	Results  []Result
	Took     time.Duration
	// Extra are violations outside a step (the leader monitor, the
	// final checks).
	Extra []Violation
}

// Violations is every violation of the run.
func (r *Report) Violations() []Violation {
	var out []Violation
	for _, res := range r.Results {
		out = append(out, res.Violations...)
	}
	return append(out, r.Extra...)
}

// Percentile is the p-th percentile (0-100) of the recovery times.
func (r *Report) Percentile(p float64) time.Duration {
	var ds []time.Duration
	for _, res := range r.Results {
		ds = append(ds, res.Recovery)
	}
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// Summary is the run's closing lines: the faults by kind, the outcomes,
// the violations and the recovery median and p99.
func (r *Report) Summary() string {
	var b strings.Builder
	kinds := map[Fault]int{}
	outcomes := map[string]int{}
	missed := 0
	for _, res := range r.Results {
		kinds[res.Step.Fault]++
		outcomes[res.Outcome]++
		if strings.Contains(res.Note, "fault not injected") {
			missed++
		}
	}
	var ks []string
	for k, n := range kinds {
		ks = append(ks, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(ks)
	var os []string
	for k, n := range outcomes {
		os = append(os, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(os)
	vs := r.Violations()
	transports := "IRC"
	if r.Matrix {
		transports = "IRC and Matrix"
	}
	fmt.Fprintf(&b, "chaos summary: seed %d, store %s, %d replica(s), %s, %d faults in %s\n", r.Seed, r.Store, r.Replicas, transports, len(r.Results), r.Took.Round(time.Second))
	fmt.Fprintf(&b, "  faults: %s\n", strings.Join(ks, ", "))
	if missed > 0 {
		fmt.Fprintf(&b, "  not injected (the target was down, e.g. rebooting): %d\n", missed)
	}
	fmt.Fprintf(&b, "  callers' outcomes: %s\n", strings.Join(os, ", "))
	fmt.Fprintf(&b, "  recovery: median %s, p99 %s, max %s\n", r.Percentile(50).Round(10*time.Millisecond),
		r.Percentile(99).Round(10*time.Millisecond), r.Percentile(100).Round(10*time.Millisecond))
	fmt.Fprintf(&b, "  violations: %d\n", len(vs))
	for _, v := range vs {
		fmt.Fprintf(&b, "    %s\n", v)
	}
	return b.String()
}

// Repeat is how to run the same schedule again.
func (r *Report) Repeat() string {
	m := 0
	if r.Matrix {
		m = 1
	}
	return fmt.Sprintf("make chaos SEED=%d FAULTS=%d STORE=%s REPLICAS=%d MATRIX=%d", r.Seed, len(r.Schedule), r.Store, r.Replicas, m)
}

// Run starts the farm, runs o's schedule and returns the report; err is a
// failure to run at all (the farm did not start), not a violation.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Store == "" {
		o.Store = StorePostgres
	}
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.Settle == 0 {
		o.Settle = 3 * time.Minute
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	start := time.Now()
	rep := &Report{Seed: o.Seed, Store: o.Store, Replicas: o.Replicas, Matrix: o.Matrix, Schedule: o.Schedule}
	if rep.Schedule == nil {
		rep.Schedule = Schedule(o.Seed, o.Faults, o.Store, o.Replicas, o.Matrix)
	}
	fmt.Fprintf(o.Out, "chaos: seed %d, %d faults, store %s, %d replica(s), matrix %v\n", o.Seed, len(rep.Schedule), o.Store, o.Replicas, o.Matrix)
	dir := o.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "kojibot-chaos-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	if o.Binary == "" {
		var err error
		if o.Binary, err = sandbox.BuildBinary(dir, false); err != nil {
			return nil, err
		}
	}
	f, err := startFarm(ctx, o, dir)
	if err != nil {
		return nil, fmt.Errorf("chaos: farm: %w", err)
	}
	defer f.close()
	r := &runner{o: o, f: f, out: o.Out, rep: rep}
	if err := r.prepare(ctx); err != nil {
		return nil, fmt.Errorf("chaos: %w\n%s", err, f.replicas.Output())
	}
	fmt.Fprintf(o.Out, "chaos: farm up in %s\n", time.Since(start).Round(100*time.Millisecond))
	for _, s := range rep.Schedule {
		if ctx.Err() != nil {
			break
		}
		res := r.step(ctx, s)
		rep.Results = append(rep.Results, res)
		mark := "ok"
		if len(res.Violations) > 0 {
			mark = fmt.Sprintf("%d VIOLATION(S)", len(res.Violations))
		}
		note := ""
		if res.Note != "" {
			note = " (" + res.Note + ")"
		}
		fmt.Fprintf(o.Out, "fault %d/%d: %s%s; caller: %s; recovered in %s [%s]\n", s.N, len(rep.Schedule), s, note, res.Outcome,
			res.Recovery.Round(10*time.Millisecond), mark)
		for _, v := range res.Violations {
			fmt.Fprintf(o.Out, "  VIOLATION %s\n", v)
		}
	}
	rep.Extra = append(rep.Extra, r.finish(ctx)...)
	rep.Took = time.Since(start)
	fmt.Fprint(o.Out, rep.Summary())
	if vs := rep.Violations(); len(vs) > 0 {
		fmt.Fprintf(o.Out, "chaos: FAILED with %d violation(s); seed %d; repeat with: %s\nschedule:\n%s", len(vs), o.Seed, rep.Repeat(), FormatSchedule(rep.Schedule))
		if vs[0].Step > 0 {
			fmt.Fprintf(o.Out, "bot output (tail):\n%s\n", tailLines(f.replicas.Output(), 80))
		}
	}
	return rep, nil
}

// timeline is when the bot or IRC went away: what may leave a caller
// without an answer.
type timeline struct {
	mu     sync.Mutex
	events []event
}

type event struct {
	at   time.Time
	what string
}

func (t *timeline) add(what string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, event{at, what})
}

// since is what happened after from.
func (t *timeline) since(from time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, e := range t.events {
		if !e.at.Before(from) {
			out = append(out, e.what)
		}
	}
	return out
}

// sinceFor is what happened after from that may leave a caller on the
// transport (Matrix or IRC) without an answer: a replica that went away,
// or its own server's restart (an IRC restart does not touch a Matrix
// caller's conversation, nor a homeserver restart an IRC caller's).
func (t *timeline) sinceFor(from time.Time, matrix bool) []string {
	var out []string
	for _, what := range t.since(from) {
		switch {
		case strings.HasPrefix(what, "irc ") && matrix, strings.HasPrefix(what, "homeserver ") && !matrix:
			continue
		}
		out = append(out, what)
	}
	return out
}

// tailLines is the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
