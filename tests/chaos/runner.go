package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"maunium.net/go/mautrix"

	"github.com/fedora-infra/kojibot/tests/harness/builders"
	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// execUser is the FAS user `kojibot exec` runs as (--as).
const execUser = "op1"

// runner runs a schedule on a farm.
type runner struct {
	o   Options
	f   *farm
	out io.Writer
	rep *Report
	tl  timeline
	w   *watcher
	seq int
	// jobResults counts the audit log's "job result" records per job.
	jobResults map[string]int
	logOffset  int64
	stopMon    chan struct{}
	monDone    chan struct{}
	monMu      sync.Mutex
	monViol    []Violation
	step0      int // the step now running, for the monitor's violations
	maxTerm    int64
	// mw is the Matrix watcher (runs with Matrix); mclients are the
	// callers' Matrix logins, by account.
	mw       *mchat
	mclients map[string]*mautrix.Client
}

// prepare waits for the bot and starts the monitor.
func (r *runner) prepare(ctx context.Context) error {
	r.jobResults = map[string]int{}
	r.f.replicas.onGone(func(name string, at time.Time) { r.tl.add("kill "+name, at) })
	r.w = &watcher{sb: r.f.sb}
	if err := r.w.connect(ctx); err != nil {
		return err
	}
	if !waitUntil(ctx, 3*time.Minute, func() bool { return r.w.present(ctx) == 1 }) {
		return fmt.Errorf("the bot did not join %s", sandbox.Channel)
	}
	if r.f.matrix != nil {
		r.mclients = map[string]*mautrix.Client{}
		cli, err := r.f.matrixLogin(ctx, matrixWatcher, matrixPassword(matrixWatcher))
		if err != nil {
			return err
		}
		if r.mw, err = r.f.openChat(ctx, cli); err != nil {
			return err
		}
		if !waitUntil(ctx, 3*time.Minute, r.mw.answers) {
			return fmt.Errorf("the bot does not answer in %s", r.f.matrix.RoomAlias)
		}
	}
	r.stopMon, r.monDone = make(chan struct{}), make(chan struct{})
	go r.monitor()
	return nil
}

// finish stops the monitor and returns its violations.
func (r *runner) finish(ctx context.Context) []Violation {
	close(r.stopMon)
	<-r.monDone
	r.w.close()
	if r.mw != nil {
		r.mw.close()
	}
	r.monMu.Lock()
	defer r.monMu.Unlock()
	return r.monViol
}

// monitor checks, several times a second, that at most one bot acts:
// one bot nick in the channel, at most one replica whose /healthz is not
// standby, and a leadership term that never goes down.
func (r *runner) monitor() {
	defer close(r.monDone)
	seen := map[string]bool{}
	violate := func(key, detail string) {
		r.monMu.Lock()
		defer r.monMu.Unlock()
		if seen[key] {
			return
		}
		seen[key] = true
		r.monViol = append(r.monViol, Violation{Step: r.step0, Invariant: "one leader", Detail: detail})
	}
	for {
		select {
		case <-r.stopMon:
			return
		case <-time.After(300 * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if n := r.w.present(ctx); n > 1 {
			violate("nicks", fmt.Sprintf("%d bot nicks in %s at once: %s", n, sandbox.Channel, r.w.lastNames()))
		}
		if len(r.f.replicas.List()) > 1 {
			leaders := 0
			for _, rep := range r.f.replicas.List() {
				if r.f.replicas.Role(ctx, rep) == RoleLeader {
					leaders++
				}
			}
			if leaders > 1 {
				violate("healthz", fmt.Sprintf("%d replicas answer /healthz as the leader at once", leaders))
			}
		}
		if r.f.store == StorePostgres {
			var term int64
			if err := r.f.stateQuery(ctx, `SELECT term FROM leader WHERE id = 1`, &term); err == nil {
				r.monMu.Lock()
				prev := r.maxTerm
				if term > r.maxTerm {
					r.maxTerm = term
				}
				r.monMu.Unlock()
				if term < prev {
					violate(fmt.Sprint("term", term), fmt.Sprintf("the leadership term went down from %d to %d", prev, term))
				}
			}
		}
		cancel()
	}
}

// step runs one job with its fault, waits for the farm to settle and
// checks the invariants.
func (r *runner) step(ctx context.Context, s Step) Result {
	r.monMu.Lock()
	r.step0 = s.N
	r.monMu.Unlock()
	res := Result{Step: s}
	violate := func(inv, format string, args ...any) {
		res.Violations = append(res.Violations, Violation{Step: s.N, Invariant: inv, Detail: fmt.Sprintf(format, args...)})
	}
	if err := r.fixture(ctx, s); err != nil {
		violate("setup", "%v", err)
		return res
	}
	base, err := r.snapshot(ctx, s)
	if err != nil {
		violate("setup", "baseline: %v", err)
		return res
	}
	stepStart := time.Now()
	cv, err := r.dialCaller(ctx, s.Matrix)
	if err != nil {
		violate("setup", "caller: %v", err)
		return res
	}
	defer cv.quit()
	convCtx, cancelConv := context.WithTimeout(ctx, r.o.Settle)
	defer cancelConv()
	done := make(chan struct{})
	go func() { defer close(done); r.converse(convCtx, s, cv) }()

	if s.AtJob {
		select {
		case <-cv.started:
		case <-done:
		case <-time.After(30 * time.Second):
		}
	}
	select {
	case <-time.After(s.After):
	case <-ctx.Done():
	}
	healed, note, ferr := r.inject(ctx, s)
	close(cv.faulted)
	res.Note = note
	if ferr != nil {
		res.Note = strings.TrimSpace(note + " fault not injected: " + ferr.Error())
	}
	// The farm's recovery is timed from the fault's end, beside the
	// caller's wait (which, for a caller left without an answer, gives
	// the bot time to answer after it came back).
	type settling struct {
		at  time.Time
		why string
	}
	settledCh := make(chan settling, 1)
	go func() {
		at, why := r.settle(ctx, time.Now().Add(r.o.Settle))
		settledCh <- settling{at, why}
	}()
	select {
	case <-done:
	case <-convCtx.Done():
		<-done
	}
	first := <-settledCh
	settled, why := first.at, first.why
	if why == "" && r.unsettled(ctx) != "" {
		// Not at rest any more (the caller's job went on): wait again.
		settled, why = r.settle(ctx, time.Now().Add(r.o.Settle))
	}
	if why != "" {
		inv := "settle"
		switch {
		case strings.Contains(why, "service"):
			inv = "services running"
		case strings.Contains(why, "journal"):
			inv = "journal closed"
		}
		violate(inv, "%s", why)
	}
	res.Recovery = settled.Sub(healed)
	if res.Recovery < 0 {
		res.Recovery = 0
	}
	// Late duplicates would come now.
	time.Sleep(time.Second)
	res.Violations = append(res.Violations, r.check(ctx, s, base, cv, stepStart)...)
	res.Outcome = cv.outcome
	if cv.confirmHeld {
		res.Note = strings.TrimSpace(res.Note + " (confirmed on the bot that took over)")
	}
	if cv.note != "" {
		res.Note = strings.TrimSpace(res.Note + " " + cv.note)
	}
	return res
}

// waitUntil polls cond every 200ms for up to d.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// cleanupMounts is how many bind mounts an old entry of a clean-up's
// fixture holds: the clean-up unmounts them one by one, with a journal
// record each, which makes a window for the faults (and a source under
// /mnt/build that must come out of it intact).
const cleanupMounts = 40

// fixture prepares what the step's job works on: old and fresh entries
// for a clean-up, the build untagged for an override.
func (r *runner) fixture(ctx context.Context, s Step) error {
	switch s.Job {
	case JobCleanup:
		script := fmt.Sprintf(`set -e
mk() { mkdir -p "$1/sub" && echo "$2" > "$1/sub/data" && dd if=/dev/urandom of="$1/blob" bs=4k count=2 status=none; }
mk %[1]s/chaos-old-%[3]d-1 old; mk %[1]s/chaos-old-%[3]d-2 old; mk %[2]s/chaos-old-%[3]d-3 old
mk %[1]s/chaos-keep-%[3]d keep; mk %[2]s/chaos-keep-%[3]d keep
mkdir -p %[2]s/chaos-src-%[3]d && echo src > %[2]s/chaos-src-%[3]d/file
mkdir -p %[1]s/chaos-old-%[3]d-m && cd %[1]s/chaos-old-%[3]d-m && mkdir $(seq -f m%%g %[4]d)
for i in $(seq %[4]d); do mount --bind %[2]s/chaos-src-%[3]d m$i; done
touch -d '10 days ago' %[1]s/chaos-old-%[3]d-1 %[1]s/chaos-old-%[3]d-2 %[2]s/chaos-old-%[3]d-3 %[1]s/chaos-old-%[3]d-m`,
			builders.MockDir, builders.BuildDir, s.N, cleanupMounts)
		if out, err := r.f.sb.Farm.Exec(s.Target, script); err != nil {
			return fmt.Errorf("clean-up fixture on %s: %v: %s", s.Target, err, out)
		}
	case JobOverride:
		admin, err := r.f.sb.Koji.AdminClient(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = admin.Logout(context.Background()) }()
		_, _ = admin.Call(ctx, "untagBuild", "dist-"+s.Arg+"-override", s.Target) // not tagged: nothing to do
	}
	return nil
}

// hostState is what a machine holds that the invariants compare.
type hostState struct {
	bootID  string
	journal []string          // fakesvc's journal lines
	entries map[string]string // path → checksum of the entries of the clean-up dirs
	backups int               // memory's backups (xen host)
}

// baseline is the farm before a step.
type baseline struct {
	hosts     map[string]*hostState
	event     int64 // the hub's last event
	reboots   int
	logOffset int64
}

// snapshotScript prints the boot id, fakesvc's journal and each entry of
// the clean-up dirs with a checksum of everything under it.
const snapshotScript = `cat /proc/sys/kernel/random/boot_id
echo ---journal
cat ` + builders.ServiceStateDir + `/journal 2>/dev/null
echo ---entries
for d in ` + builders.MockDir + ` ` + builders.BuildDir + `; do
  [ -d "$d" ] || continue
  cd "$d"
  for e in $(ls -A); do
    sum=$(find "$e" -xdev 2>/dev/null | sort | while read -r p; do
      if [ -L "$p" ]; then echo "L $p $(readlink "$p")"; elif [ -f "$p" ]; then echo "F $p $(sha256sum < "$p")"; else echo "D $p"; fi
    done | sha256sum | cut -c1-16)
    echo "$d/$e $sum"
  done
done
echo ---backups
ls ` + sandbox.XenConfigDir + ` 2>/dev/null | grep -c kojibot- || true
`

// machines are the hosts whose state the run compares.
func machines() []string {
	return append([]string{sandbox.HubHost, sandbox.XenHost}, sandbox.Builders...)
}

func (r *runner) hostSnapshot(name string) (*hostState, error) {
	out, err := r.f.sb.Farm.Exec(name, snapshotScript)
	if err != nil {
		return nil, err
	}
	h := &hostState{entries: map[string]string{}}
	section := "boot"
	for _, line := range strings.Split(out, "\n") {
		switch line {
		case "---journal", "---entries", "---backups":
			section = line[3:]
			continue
		}
		if line == "" {
			continue
		}
		switch section {
		case "boot":
			h.bootID = line
		case "journal":
			h.journal = append(h.journal, line)
		case "entries":
			if p, sum, ok := strings.Cut(line, " "); ok {
				h.entries[p] = sum
			}
		case "backups":
			h.backups, _ = strconv.Atoi(line)
		}
	}
	return h, nil
}

// snapshot takes the farm's baseline for step s.
func (r *runner) snapshot(ctx context.Context, s Step) (*baseline, error) {
	b := &baseline{hosts: map[string]*hostState{}, reboots: r.f.sb.Reboots()}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for _, m := range machines() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := r.hostSnapshot(m)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", m, err)
			}
			b.hosts[m] = h
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := r.kojiValue(ctx, `SELECT coalesce(max(id), 0) FROM events`, &b.event); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(r.auditLog()); err == nil {
		b.logOffset = fi.Size()
	}
	return b, nil
}

// kojiValue runs a one-value query on the hub's database.
func (r *runner) kojiValue(ctx context.Context, q string, dest any, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, r.f.sb.DBs[sandbox.KojiDB].Admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, q, args...).Scan(dest)
}

// auditLog is the bots' log file (log.file, shared by the replicas).
func (r *runner) auditLog() string {
	return filepath.Join(r.f.sb.Dir, "bots", Nick, "kojibot.log")
}

// caller is one step's client: on IRC, or on Matrix.
type caller struct {
	c *ircnet.Client // on IRC
	m *mchat         // on Matrix
	// nick is the IRC nick, or the Matrix user id.
	nick string
	// account is the FAS user; auditAccount is the account the audit
	// log names (the Matrix user id on Matrix).
	account      string
	auditAccount string
	// sent is when each command line was sent, and whether a bot was in
	// the channel then.
	sent      []time.Time
	delivered []bool
	token     string
	jobID     string
	outcome   string
	// confirmSent: the step's confirm line went out.
	confirmSent bool
	// confirmHeld: it went out after the fault, to the bot that took
	// over (Step.ConfirmAcrossKill).
	confirmHeld bool
	// started is closed when the job has started (jobID is set).
	started chan struct{}
	// faulted is closed once the step's fault has been injected.
	faulted chan struct{}
	// note is what check found worth printing beside the outcome.
	note string
}

// dialCaller connects a caller (a new nick, one of the callers' accounts)
// and joins the channel, retrying while IRC is down; on Matrix, it logs
// in as one of the callers' accounts (once a run) and syncs the room.
func (r *runner) dialCaller(ctx context.Context, matrix bool) (*caller, error) {
	r.seq++
	account := callers[r.seq%len(callers)]
	if matrix {
		cli := r.mclients[account]
		if cli == nil {
			var err error
			for i := 0; i < 30; i++ { // the homeserver may be restarting
				if cli, err = r.f.matrixLogin(ctx, account, matrixPassword(account)); err == nil {
					break
				}
				time.Sleep(time.Second)
			}
			if err != nil {
				return nil, err
			}
			r.mclients[account] = cli
		}
		m, err := r.f.openChat(ctx, cli)
		if err != nil {
			return nil, err
		}
		return &caller{m: m, nick: string(cli.UserID), account: account, auditAccount: string(cli.UserID), started: make(chan struct{}), faulted: make(chan struct{})}, nil
	}
	nick := fmt.Sprintf("%s-%d", account, r.seq)
	var last error
	for i := 0; i < 60; i++ {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := ircnet.Dial(dctx, r.f.sb.IRC.Addr(), nick, ircnet.ClientOptions{SASLUser: account, SASLPassword: account + "-pw"})
		if err == nil {
			err = c.Join(dctx, sandbox.Channel)
			if err == nil {
				cancel()
				return &caller{c: c, nick: nick, account: account, auditAccount: account, started: make(chan struct{}), faulted: make(chan struct{})}, nil
			}
			c.Quit()
		}
		cancel()
		last = err
		time.Sleep(time.Second)
	}
	return nil, last
}

// line is one line the bot addressed to a caller.
type line struct {
	text   string
	notice bool
	at     time.Time
}

// quit leaves IRC, or stops the Matrix sync.
func (cv *caller) quit() {
	if cv.m != nil {
		cv.m.close()
		return
	}
	cv.c.Quit()
}

// placeLines are the bot's messages in the channel or the room, to
// anyone (a recovery's notice, say).
func (cv *caller) placeLines() []string {
	if cv.m != nil {
		return cv.m.roomLines()
	}
	var out []string
	for _, m := range cv.c.Messages() {
		if strings.HasPrefix(m.Source, Nick) && (m.Command == "PRIVMSG" || m.Command == "NOTICE") && m.Target() == sandbox.Channel {
			out = append(out, m.Text)
		}
	}
	return out
}

// lines are the bot's lines to the caller so far: in the channel (with
// "nick: ") and by private NOTICE; on Matrix, its replies to the
// caller's commands.
func (cv *caller) lines() []line {
	if cv.m != nil {
		return cv.m.lines()
	}
	var out []line
	for _, m := range cv.c.Messages() {
		if !strings.HasPrefix(m.Source, Nick) {
			continue
		}
		switch {
		case m.Command == "PRIVMSG" && m.Target() == sandbox.Channel && strings.HasPrefix(m.Text, cv.nick+": "):
			out = append(out, line{text: strings.TrimPrefix(m.Text, cv.nick+": "), at: m.At})
		case m.Command == "NOTICE" && m.Target() == cv.nick:
			out = append(out, line{text: m.Text, notice: true, at: m.At})
		}
	}
	return out
}

// disconnected reports whether the caller's connection has ended (on
// Matrix, never: its client syncs again when the homeserver is back).
func (cv *caller) disconnected() bool {
	if cv.m != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := cv.c.Expect(ctx, func(ircnet.Message) bool { return false })
	return err != nil && strings.Contains(err.Error(), "received before")
}

var (
	tokenRe    = regexp.MustCompile(`confirm ([a-z0-9]{8}) \(within `)
	startedRe  = regexp.MustCompile(`^job ([0-9]+) started: `)
	jobEndRe   = regexp.MustCompile(`^(?:job ([0-9]+) \(.*\) done in |error: job ([0-9]+) \(|job ([0-9]+) cancelled after )`)
	planPathRe = regexp.MustCompile(`(?m)^((?:` + regexp.QuoteMeta(builders.MockDir) + `|` + regexp.QuoteMeta(builders.BuildDir) + `)/\S+)\s{2,}`)
)

// send says "!koji text" as the caller. On Matrix it reports whether the
// homeserver took the command (a command that waits in the room while no
// bot syncs is delivered: the next one reads it); on IRC, always true.
func (r *runner) send(cv *caller, text string) bool {
	cv.sent = append(cv.sent, time.Now())
	if cv.m != nil {
		_, ok := cv.m.say(text)
		cv.delivered = append(cv.delivered, ok)
		return ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cv.delivered = append(cv.delivered, r.w.present(ctx) == 1)
	_ = cv.c.Privmsg(sandbox.Channel, "!koji "+text)
	return true
}

// await waits for the first line from index from on that accept takes,
// and returns its index; -1 and why when the wait ends otherwise: the
// caller's connection went, the bot went away and came back without
// answering ("silent"), or ctx ended.
func (r *runner) await(ctx context.Context, cv *caller, from int, accept func(line) bool) (int, string) {
	sent := cv.sent[len(cv.sent)-1]
	var backSince time.Time
	for {
		ls := cv.lines()
		for i := from; i < len(ls); i++ {
			if accept(ls[i]) {
				return i, ""
			}
		}
		if cv.disconnected() {
			return -1, "silent"
		}
		if ev := r.tl.sinceFor(sent, cv.m != nil); len(ev) > 0 {
			// The bot (or IRC) went away after the line was sent: once
			// it is back and has had time to answer, stop waiting.
			if r.w.present(ctx) == 1 {
				if backSince.IsZero() {
					backSince = time.Now()
				}
				if time.Since(backSince) > 10*time.Second && r.jobSettled(ctx, cv.jobID) {
					return -1, "silent"
				}
			} else {
				backSince = time.Time{}
			}
		}
		select {
		case <-ctx.Done():
			return -1, "no answer"
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// jobSettled reports whether job id (none: "") has ended in the store.
func (r *runner) jobSettled(ctx context.Context, id string) bool {
	if id == "" {
		return true
	}
	var n int
	if err := r.f.stateQuery(ctx, `SELECT count(*) FROM jobs WHERE id = `+id+` AND finished IS NOT NULL`, &n); err != nil {
		return false
	}
	return n == 1
}

// isError is an error or refusal line (not a job's).
func isError(l line) bool {
	return !l.notice && (strings.HasPrefix(l.text, "error:") || strings.HasPrefix(l.text, "denied:")) && !jobEndRe.MatchString(l.text)
}

// converse drives the step's command through the bot: the command, the
// confirmation when it asks for one, the job to its end.
func (r *runner) converse(ctx context.Context, s Step, cv *caller) {
	if !r.send(cv, s.Command()) {
		cv.outcome = "not delivered"
		return
	}
	from := 0
	if s.Confirmed() {
		// A value already set needs no confirmation: nothing changed.
		i, why := r.await(ctx, cv, 0, func(l line) bool {
			return tokenRe.MatchString(l.text) || isError(l) || strings.Contains(l.text, "nothing changed")
		})
		if i < 0 {
			cv.outcome = why
			return
		}
		l := cv.lines()[i]
		if isError(l) {
			cv.outcome = errorOutcome(l)
			return
		}
		if !tokenRe.MatchString(l.text) {
			cv.outcome = "result"
			return
		}
		cv.token = tokenRe.FindStringSubmatch(l.text)[1]
		if s.ConfirmAcrossKill() {
			// The plan came from the leader about to be killed: confirm
			// it on the one that takes over, which must run that plan
			// once (or say it changed), never another.
			select {
			case <-cv.faulted:
			case <-ctx.Done():
			}
			waitUntil(ctx, r.o.Settle, func() bool {
				if r.f.replicas.Leader(ctx) == nil || r.w.present(ctx) != 1 {
					return false
				}
				if s.Matrix {
					return r.mw.answers()
				}
				return r.w.answers(ctx)
			})
			cv.confirmHeld = true
		}
		cv.confirmSent = true
		from = len(cv.lines())
		if !r.send(cv, "confirm "+cv.token) {
			cv.outcome = "not delivered"
			return
		}
	}
	switch s.Job {
	case JobCapacity, JobMemoryShow, JobMemorySet:
		// One line answers (a value already set is answered by notice:
		// nothing changed).
		i, why := r.await(ctx, cv, from, func(l line) bool { return !l.notice || strings.Contains(l.text, "nothing changed") })
		if i < 0 {
			cv.outcome = why
			return
		}
		cv.outcome = "result"
		if l := cv.lines()[i]; isError(l) {
			cv.outcome = errorOutcome(l)
		}
		return
	}
	i, why := r.await(ctx, cv, from, func(l line) bool { return startedRe.MatchString(l.text) || isError(l) })
	if i < 0 {
		cv.outcome = why
		return
	}
	l := cv.lines()[i]
	if isError(l) {
		cv.outcome = errorOutcome(l)
		return
	}
	cv.jobID = startedRe.FindStringSubmatch(l.text)[1]
	close(cv.started)
	i, why = r.await(ctx, cv, i+1, func(l line) bool { return jobID(l.text) == cv.jobID })
	if i < 0 {
		cv.outcome = why
		return
	}
	cv.outcome = "result"
	if strings.HasPrefix(cv.lines()[i].text, "error:") {
		cv.outcome = "error"
	}
}

// interruptedPrefix begins the answer a bot gives, on Matrix, to a
// command the bot before it had taken and not finished.
const interruptedPrefix = "error: interrupted: "

// errorOutcome is the outcome an error line l tells: "interrupted" or
// "error".
func errorOutcome(l line) string {
	if strings.HasPrefix(l.text, interruptedPrefix) {
		return "interrupted"
	}
	return "error"
}

// endsCommand reports whether a line to a caller ends the command it answers:
// a confirmation asked, a job's end, a value set or found already set,
// or a notice that the command was interrupted or not run. A clean-up's
// "before" line, a job's "started" line and its progress do not.
func endsCommand(text string) bool {
	return tokenRe.MatchString(text) || jobID(text) != "" || strings.HasPrefix(text, interruptedPrefix) ||
		strings.HasPrefix(text, "error: not run: ") || strings.Contains(text, " → ") ||
		strings.Contains(text, " MiB in ") || strings.Contains(text, "nothing changed")
}

// jobID is the job a job's last line ends, or "".
func jobID(text string) string {
	m := jobEndRe.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1] + m[2] + m[3]
}

// inject injects s's fault and returns when it ended (the kill, the
// server back, the network healed).
func (r *runner) inject(ctx context.Context, s Step) (time.Time, string, error) {
	switch s.Fault {
	case FaultKillLeader, FaultKillStandby:
		var rep *Replica
		waitUntil(ctx, 30*time.Second, func() bool {
			if s.Fault == FaultKillLeader {
				rep = r.f.replicas.Leader(ctx)
			} else {
				rep = r.f.replicas.Standby(ctx)
			}
			return rep != nil
		})
		if rep == nil {
			return time.Now(), "", fmt.Errorf("no %s replica", strings.TrimPrefix(string(s.Fault), "kill-"))
		}
		err := r.f.replicas.Kill(rep)
		return time.Now(), "killed replica " + rep.Name, err
	case FaultKillExec:
		cmd := exec.Command(r.f.binary, "exec", "--config", r.f.replicas.List()[0].Config, "--as", execUser, "--yes", "--",
			"restart", "builders", s.FaultTarget)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return time.Now(), "", err
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return time.Now(), fmt.Sprintf("exec ended before the kill (%v): %s", err, lastLine(out.String())), nil
		case <-time.After(s.Hold):
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return time.Now(), "exec killed at: " + lastLine(out.String()), nil
	case FaultKojiDB:
		r.f.sb.Koji.PG.Stop()
		time.Sleep(s.Hold)
		err := r.f.sb.Koji.PG.Start(ctx)
		return time.Now(), "", err
	case FaultStateDB:
		r.f.sb.PG.Stop()
		time.Sleep(s.Hold)
		err := r.f.sb.PG.Start(ctx)
		return time.Now(), "", err
	case FaultIRC:
		r.tl.add("irc restart", time.Now())
		err := r.f.sb.IRC.Restart(ctx)
		r.tl.add("irc back", time.Now())
		return time.Now(), "", err
	case FaultHomeserver:
		if r.f.matrix == nil {
			return time.Now(), "", fmt.Errorf("no homeserver in this run")
		}
		r.tl.add("homeserver restart", time.Now())
		err := r.f.matrix.HS.Restart(ctx)
		r.tl.add("homeserver back", time.Now())
		return time.Now(), "", err
	case FaultSSHDKill:
		out, err := r.f.sb.Farm.Exec(s.FaultTarget, `n=0; for p in $(pgrep -x 'sshd|sshd-session|sshd-auth'); do [ "$p" = 1 ] || { kill -KILL "$p" 2>/dev/null && n=$((n+1)); }; done; echo $n`)
		return time.Now(), strings.TrimSpace(out) + " sshd processes killed", err
	case FaultReboot:
		before := r.f.sb.Reboots()
		req := filepath.Join(r.f.sb.Dir, "standins", "reboot-requests", s.FaultTarget)
		if err := os.WriteFile(req, nil, 0o644); err != nil {
			return time.Now(), "", err
		}
		if !waitUntil(ctx, 2*time.Minute, func() bool { return r.f.sb.Reboots() > before }) {
			return time.Now(), "", fmt.Errorf("%s did not come back", s.FaultTarget)
		}
		return time.Now(), "", nil
	case FaultNetCut:
		p := r.f.proxies[s.FaultTarget]
		p.Cut()
		time.Sleep(s.Hold)
		p.Heal()
		return time.Now(), "", nil
	case FaultNetSlow:
		p := r.f.proxies[s.FaultTarget]
		p.SetSlow(s.Slow)
		time.Sleep(s.Hold)
		p.Heal()
		return time.Now(), "", nil
	case FaultNetReset:
		n := r.f.proxies[s.FaultTarget].Reset()
		return time.Now(), fmt.Sprintf("%d connections reset", n), nil
	case FaultStateDiskFull:
		fill := filepath.Join(r.f.stateFS, "fill")
		_ = exec.Command("dd", "if=/dev/zero", "of="+fill, "bs=64k").Run() // ends with ENOSPC
		time.Sleep(s.Hold)
		err := os.Remove(fill)
		return time.Now(), "", err
	}
	return time.Now(), "", fmt.Errorf("unknown fault %q", s.Fault)
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// services are the services that must run on each machine.
func (r *runner) services() map[string][]string {
	out := map[string][]string{}
	for name, h := range r.f.sb.Farm.Hosts() {
		if len(h.Services) > 0 {
			out[name] = h.Services
		}
	}
	return out
}

// inactive lists the services not running, as "svc on host".
func (r *runner) inactive() []string {
	fakesvc := filepath.Join(r.f.sb.Dir, "farm", "bin", "fakesvc")
	var mu sync.Mutex
	var wg sync.WaitGroup
	var out []string
	for host, svcs := range r.services() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			script := "for s in " + strings.Join(svcs, " ") + "; do " + fakesvc + " is-active $s >/dev/null || echo $s; done"
			o, err := r.f.sb.Farm.Exec(host, script)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out = append(out, "(all) on "+host+" (down: "+err.Error()+")")
				return
			}
			for _, s := range strings.Fields(o) {
				out = append(out, s+" on "+host)
			}
		}()
	}
	wg.Wait()
	slices.Sort(out)
	return out
}

// settle waits until the farm is at rest: a bot in the channel that
// answers, every service running, no journal record open, no job
// unfinished. It returns when, or why not by the deadline.
func (r *runner) settle(ctx context.Context, deadline time.Time) (time.Time, string) {
	var why string
	for {
		why = r.unsettled(ctx)
		if why == "" {
			return time.Now(), ""
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Now(), "not settled within " + r.o.Settle.String() + ": " + why
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (r *runner) unsettled(ctx context.Context) string {
	if r.f.replicas.Leader(ctx) == nil {
		return "no acting bot"
	}
	if n := r.w.present(ctx); n != 1 {
		return fmt.Sprintf("%d bots in the channel", n)
	}
	if in := r.inactive(); len(in) > 0 {
		return "service not running: " + strings.Join(in, ", ")
	}
	var open int
	if err := r.f.stateQuery(ctx, `SELECT count(*) FROM journal WHERE closed IS NULL`, &open); err != nil {
		return "state store: " + err.Error()
	}
	if open > 0 {
		return fmt.Sprintf("%d journal record(s) open", open)
	}
	var running int
	if err := r.f.stateQuery(ctx, `SELECT count(*) FROM jobs WHERE finished IS NULL`, &running); err != nil {
		return "state store: " + err.Error()
	}
	if running > 0 {
		return fmt.Sprintf("%d job(s) unfinished", running)
	}
	if !r.w.answers(ctx) {
		return "the bot does not answer"
	}
	if r.mw != nil && !r.mw.answers() {
		return "the bot does not answer on Matrix"
	}
	return ""
}

// auditRecord is one line of the audit log, the fields the checks read.
type auditRecord struct {
	Log     string `json:"log"`
	Msg     string `json:"msg"`
	Account string `json:"account"`
	Job     any    `json:"job"`
	Command string `json:"command"`
}

// logged reports whether the bots' log has a record with message msg
// since offset.
func (r *runner) logged(offset int64, msg string) bool {
	f, err := os.Open(r.auditLog())
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var a auditRecord
		if json.Unmarshal(sc.Bytes(), &a) == nil && a.Msg == msg {
			return true
		}
	}
	return false
}

// audit reads the audit records written since offset.
func (r *runner) audit(offset int64) []auditRecord {
	f, err := os.Open(r.auditLog())
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	var out []auditRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var a auditRecord
		if json.Unmarshal(sc.Bytes(), &a) == nil && a.Log == "audit" {
			out = append(out, a)
		}
	}
	return out
}

// check compares the farm after step s with its baseline: deletions
// outside the plan, commands run twice, the caller's answers.
func (r *runner) check(ctx context.Context, s Step, base *baseline, cv *caller, stepStart time.Time) []Violation {
	var vs []Violation
	violate := func(inv, format string, args ...any) {
		vs = append(vs, Violation{Step: s.N, Invariant: inv, Detail: fmt.Sprintf(format, args...)})
	}
	ls := cv.lines()
	var all []string
	for _, l := range ls {
		all = append(all, l.text)
	}
	text := strings.Join(all, "\n")

	// 2. Nothing outside the confirmed plan deleted or changed.
	plan := map[string]bool{}
	if s.Job == JobCleanup && cv.confirmSent {
		for _, m := range planPathRe.FindAllStringSubmatch(text, -1) {
			plan[m[1]] = true
		}
	}
	after := map[string]*hostState{}
	for _, m := range machines() {
		h, err := r.hostSnapshot(m)
		if err != nil {
			violate("setup", "snapshot of %s: %v", m, err)
			continue
		}
		after[m] = h
	}
	rebooted := func(m string) bool {
		return after[m] != nil && base.hosts[m] != nil && after[m].bootID != base.hosts[m].bootID
	}
	for m, b := range base.hosts {
		a := after[m]
		if a == nil || rebooted(m) {
			continue // a rebooted machine's tmpfs starts empty
		}
		for p, sum := range b.entries {
			if plan[p] && s.Target == m {
				continue
			}
			got, ok := a.entries[p]
			switch {
			case !ok:
				violate("nothing outside the plan deleted", "%s on %s is gone (not in the confirmed plan of %d entries)", p, m, len(plan))
			case got != sum:
				violate("nothing outside the plan deleted", "%s on %s changed", p, m)
			}
		}
	}

	// 3. No command ran twice: the services journals, memory's backups,
	// the reboots, the hub's history, the audit log, the job records.
	allowed := map[string]int{} // "host action service" → lines
	addRestart := func(host string) {
		for _, svc := range r.services()[host] {
			allowed[host+" restart "+svc] += 2 // fakesvc journals a restart's stop and start
		}
	}
	switch s.Job {
	case JobCleanup:
		for _, svc := range r.services()[s.Target] {
			allowed[s.Target+" stop "+svc]++
		}
	case JobRestartBuilders:
		addRestart(s.Target)
	case JobRestartAll:
		addRestart(sandbox.HubHost)
		for _, b := range sandbox.Builders {
			addRestart(b)
		}
	}
	if s.Fault == FaultKillExec {
		addRestart(s.FaultTarget)
	}
	for m, b := range base.hosts {
		a := after[m]
		if a == nil || rebooted(m) || len(a.journal) < len(b.journal) {
			continue
		}
		count := map[string]int{}
		for _, l := range a.journal[len(b.journal):] {
			f := strings.Fields(l) // TIME ACTION SERVICE RESULT
			if len(f) >= 3 && (f[1] == "stop" || f[1] == "restart") {
				count[m+" "+f[1]+" "+f[2]]++
			}
		}
		for k, n := range count {
			if n > allowed[k] {
				violate("no command ran twice", "services journal: %d × %q (at most %d)", n, k, allowed[k])
			}
		}
	}
	if a, b := after[sandbox.XenHost], base.hosts[sandbox.XenHost]; a != nil && b != nil {
		want := 0
		if s.Job == JobMemorySet {
			want = 1
		}
		if a.backups-b.backups > want {
			violate("no command ran twice", "%d memory backups made on %s (at most %d)", a.backups-b.backups, sandbox.XenHost, want)
		}
	}
	reboots, want := r.f.sb.Reboots()-base.reboots, 0
	if s.Job == JobReboot {
		want++
	}
	if s.Fault == FaultReboot {
		want++
	}
	if reboots > want {
		violate("no command ran twice", "%d reboots (at most %d)", reboots, want)
	}
	switch s.Job {
	case JobCapacity:
		var n int
		if err := r.kojiValue(ctx, `SELECT count(*) FROM host_config hc JOIN host h ON h.id = hc.host_id
			WHERE h.name = $1 AND hc.capacity = $2::float AND hc.create_event > $3`, &n, s.Target, s.Arg, base.event); err != nil {
			violate("setup", "hub history: %v", err)
		} else if n > 1 {
			violate("no command ran twice", "the hub's host_config has %d rows setting %s's capacity to %s", n, s.Target, s.Arg)
		}
	case JobOverride:
		var n int
		if err := r.kojiValue(ctx, `SELECT count(*) FROM tag_listing tl JOIN tag t ON t.id = tl.tag_id
			JOIN build b ON b.id = tl.build_id JOIN package p ON p.id = b.pkg_id
			WHERE t.name = $1 AND p.name || '-' || b.version || '-' || b.release = $2 AND tl.create_event > $3`,
			&n, "dist-"+s.Arg+"-override", s.Target, base.event); err != nil {
			violate("setup", "hub history: %v", err)
		} else if n > 1 {
			violate("no command ran twice", "the hub's tag_listing has %d rows tagging %s into dist-%s-override", n, s.Target, s.Arg)
		}
	}
	confirmed := 0
	for _, a := range r.audit(base.logOffset) {
		switch a.Msg {
		case "confirmed":
			if a.Account == cv.auditAccount {
				confirmed++
			}
		case "job result":
			id := fmt.Sprint(a.Job)
			r.jobResults[id]++
			if r.jobResults[id] > 1 {
				violate("no command ran twice", "the audit log has %d results of job %s", r.jobResults[id], id)
			}
		}
	}
	if confirmed > 1 {
		violate("no command ran twice", "the audit log has %d confirmations by %s for one confirm", confirmed, cv.nick)
	}
	if cv.token != "" || s.Job == JobOverride {
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM jobs WHERE owner = '%s' AND started >= %d AND place != 'exec'`,
			cv.account, stepStart.UnixNano())
		if err := r.f.stateQuery(ctx, q, &n); err == nil && n > 1 {
			violate("no command ran twice", "the store has %d jobs of %s's one command", n, cv.nick)
		}
	}

	// 4. One answer per command line.
	tokens := map[string]bool{}
	started, ends := map[string]int{}, 0
	for _, l := range ls {
		if m := tokenRe.FindStringSubmatch(l.text); m != nil {
			tokens[m[1]] = true
		}
		if m := startedRe.FindStringSubmatch(l.text); m != nil {
			started[m[1]]++
		}
		if id := jobID(l.text); id != "" {
			ends++
		}
	}
	if len(tokens) > 1 {
		violate("one answer per command", "%d confirmations for one %q", len(tokens), s.Command())
	}
	for id, n := range started {
		if n > 1 {
			violate("one answer per command", "job %s started %d times", id, n)
		}
	}
	if len(started) > 1 || ends > 1 {
		violate("one answer per command", "%d jobs started and %d ended for one %q:\n%s", len(started), ends, s.Command(), text)
	}
	switch s.Job {
	case JobCapacity:
		if n := strings.Count(text, " → "); n > 1 {
			violate("one answer per command", "%d capacity changes reported for one %q", n, s.Command())
		}
	case JobMemorySet:
		if n := strings.Count(text, " MiB in "); n > 1 {
			violate("one answer per command", "%d memory changes reported for one %q", n, s.Command())
		}
	}
	if cv.m != nil {
		// On Matrix each answer replies to its command: at most one that
		// ends it (an interrupted notice and a result for one command
		// would be two).
		answers := map[string]int{}
		for _, e := range cv.m.botEvents() {
			if b := body(e); cv.m.sentIt(replyTo(e)) && strings.HasPrefix(b, cv.nick+": ") && endsCommand(strings.TrimPrefix(b, cv.nick+": ")) {
				answers[string(replyTo(e))]++
			}
		}
		for evt, n := range answers {
			if n > 1 {
				violate("one answer per command", "%d answers ending one command (%s) of %q:\n%s", n, evt, s.Command(), text)
			}
		}
	}
	if cv.outcome == "silent" && cv.jobID != "" {
		// The next bot's recovery names the job it found interrupted.
		for _, l := range cv.placeLines() {
			if strings.Contains(l, "recovery: interrupted") && strings.Contains(l, "job "+cv.jobID+" (") {
				cv.outcome = "interrupted"
			}
		}
	}
	switch cv.outcome {
	case "silent":
		// Excused only when the bot or the caller's IRC went away; on
		// Matrix, when the bot went away or the homeserver restarted
		// after the command was sent.
		gone := r.tl.sinceFor(cv.sent[0], cv.m != nil)
		if cv.m != nil && len(gone) > 0 && !slices.ContainsFunc(gone, func(w string) bool { return !strings.HasPrefix(w, "homeserver ") }) {
			if r.logged(base.logOffset, "matrix: sending failed") {
				cv.note = "the bot could not send a reply while the homeserver was down"
			} else {
				cv.note = "a reply lost in the homeserver's restart (the bot logged no failed send)"
			}
		}
		if len(gone) == 0 && !cv.disconnected() {
			violate("one answer per command", "no answer to %q and nothing went away", s.Command())
		}
		if !cv.delivered[len(cv.delivered)-1] {
			cv.outcome = "not delivered"
		}
	case "no answer":
		violate("one answer per command", "no answer to %q within %s:\n%s", s.Command(), r.o.Settle, text)
	}
	return vs
}
