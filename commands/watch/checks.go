package watch

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/alerting"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/commands/watch/trend"
)

// hostDisk is what df said on one host.
type hostDisk struct {
	host   string
	usages []fleet.Usage
	err    error
}

// survey is everything one round read from the farm, before any of it is
// judged.
type survey struct {
	builders []hostDisk // sorted by host; nil when not checked
	shared   *hostDisk  // nil when not checked

	stale    bool // whether the hosts were read (stale check)
	conn     bool // whether the connections were counted
	hosts    []kojidb.Host
	hostsErr error
	conns    int
	maxConns int
	connsErr error
}

// round is the bookkeeping of one CheckOnce.
type round struct {
	now time.Time
	// predicted are the fill predictions of the mounts read this round, by
	// check name.
	predicted map[string]trend.Prediction
	seen      map[string]bool // check names observed or kept this round
	sent      int
}

// CheckOnce runs every check once and sends what they have to say. The
// reading is bounded to nine tenths of watch.interval, so that a round fits
// in the interval; a host or database that has not answered by then counts
// as a check that could not run. When ctx ends before the checks are
// judged, nothing is notified. Rounds run one at a time.
func (w *Watcher) CheckOnce(ctx context.Context) {
	w.cycle.Lock()
	defer w.cycle.Unlock()
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, w.set.interval*9/10)
	s := w.gather(rctx)
	cancel()
	if err := ctx.Err(); err != nil {
		w.log.Debug("check round abandoned", "err", err)
		return
	}

	r := &round{now: time.Now(), seen: map[string]bool{}}
	for _, h := range s.builders {
		w.judgeBuilder(r, h)
	}
	if s.shared != nil {
		w.judgeShared(r, *s.shared)
	}
	if s.stale {
		w.judgeStale(r, s)
	}
	if s.conn {
		w.judgeConnections(r, s)
	}
	w.prune(r.seen)

	firing := w.tracker.Firing()
	if w.deps.Metrics != nil {
		w.deps.Metrics.SetFiring(len(firing))
	}
	w.log.Debug("check round done", "took", time.Since(start).Round(time.Millisecond),
		"notified", r.sent, "firing", len(firing))
}

// gather reads the builders' mounts, the shared mounts, the hosts and the
// connection count, all at once.
func (w *Watcher) gather(ctx context.Context) survey {
	var s survey
	var wg sync.WaitGroup
	if w.deps.Disk != nil && len(w.set.mounts) > 0 && w.deps.Builders != nil {
		builders := w.builderNames()
		s.builders = make([]hostDisk, len(builders))
		for i, b := range builders {
			s.builders[i].host = b
		}
		wg.Go(func() { w.readBuilders(ctx, s.builders) })
	}
	if w.deps.Disk != nil && w.set.sharedFrom != "" && len(w.set.sharedMounts) > 0 {
		s.shared = &hostDisk{host: w.set.sharedFrom}
		wg.Go(func() {
			s.shared.usages, s.shared.err = w.diskUsage(ctx, s.shared.host, w.set.sharedMounts)
		})
	}
	var hosts HostReader = w.deps.Hub
	if hosts == nil && w.deps.DB != nil {
		hosts = w.deps.DB
	}
	if hosts != nil {
		s.stale = true
		wg.Go(func() {
			s.hostsErr = guard("list hosts", func() (err error) {
				s.hosts, err = hosts.Hosts(ctx)
				return err
			})
		})
	}
	if w.deps.DB != nil {
		s.conn = true
		wg.Go(func() {
			s.connsErr = guard("count connections", func() (err error) {
				s.conns, s.maxConns, err = w.deps.DB.ConnectionCount(ctx, w.set.dbUser)
				return err
			})
		})
	}
	wg.Wait()
	return s
}

// builderNames returns the builders to check, sorted, without duplicates
// or empty names.
func (w *Watcher) builderNames() []string {
	var names []string
	for _, b := range w.deps.Builders() {
		if b = strings.TrimSpace(b); b != "" {
			names = append(names, b)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// readBuilders runs df on every builder, at most ssh.parallel at a time.
func (w *Watcher) readBuilders(ctx context.Context, out []hostDisk) {
	sem := make(chan struct{}, w.set.parallel)
	var wg sync.WaitGroup
	for i := range out {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			out[i].err = fmt.Errorf("not checked: %w", ctx.Err())
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i].usages, out[i].err = w.diskUsage(ctx, out[i].host, w.set.mounts)
		})
	}
	wg.Wait()
}

// diskUsage calls the DiskReader, turning a panic into an error.
func (w *Watcher) diskUsage(ctx context.Context, host string, paths []string) (u []fleet.Usage, err error) {
	err = guard("df on "+host, func() (err error) {
		u, err = w.deps.Disk.DiskUsage(ctx, host, paths)
		return err
	})
	return u, err
}

// guard runs f, turning a panic into an error naming op.
func guard(op string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: panic: %v\n%s", op, r, debug.Stack())
		}
	}()
	return f()
}

// view is a check's observation with the words to notify about it.
type view struct {
	check string
	obs   alerting.Observation
	// label names the check in CHECK FAILED/RECOVERED lines.
	label string
	// alert says what fails, after ALERT or REMINDER.
	alert string
	// clear says how it is now, after RESOLVED.
	clear string
	// noRepeat suppresses the reminders.
	noRepeat bool
	// warning: the check warns of what is coming rather than alerts of
	// what fails (WARNING, not ALERT).
	warning bool
}

// text is the notification line for p, or "" when there is nothing to say.
func (v view) text(p alerting.Pending, now time.Time) string {
	switch p.Notification {
	case alerting.Firing:
		if v.warning {
			return "WARNING " + v.alert
		}
		return "ALERT " + v.alert
	case alerting.Repeat:
		if v.noRepeat {
			return ""
		}
		return fmt.Sprintf("REMINDER %s — failing for %s", v.alert, human(now.Sub(p.Prev.Since)))
	case alerting.Resolved:
		if v.warning {
			return fmt.Sprintf("RESOLVED %s (warned %s ago)", v.clear, human(p.Next.Since.Sub(p.Prev.Since)))
		}
		return fmt.Sprintf("RESOLVED %s (was failing %s)", v.clear, human(p.Next.Since.Sub(p.Prev.Since)))
	case alerting.CheckFailed:
		return fmt.Sprintf("CHECK FAILED %s: %s", v.label, reason(p.Next.LastError))
	case alerting.CheckRecovered:
		line := fmt.Sprintf("CHECK RECOVERED %s (could not run for %s)", v.label, human(now.Sub(p.Prev.ErrorSince)))
		status := v.clear
		if p.Next.Firing {
			status = v.alert
		}
		if status != "" {
			line += ", now " + status
		}
		return line
	}
	return ""
}

// observe records v's observation in the tracker and returns the pending
// notification and its text.
func (w *Watcher) observe(r *round, v view) (alerting.Pending, string) {
	r.seen[v.check] = true
	p := w.tracker.Observe(v.check, v.obs)
	return p, v.text(p, r.now)
}

// emit observes v and sends what it has to say; see send.
func (w *Watcher) emit(r *round, v view) bool {
	p, text := w.observe(r, v)
	return w.send(r, p, message(text))
}

// message is the notification whose headline is text; an empty message
// (nothing to say) for "".
func message(text string) reply.Message {
	if text == "" {
		return reply.Message{}
	}
	return reply.Message{Kind: reply.Info, Lines: []string{text}}
}

// send sends m for p and, once it went out, commits p; a notification
// that did not go out stays unrecorded and comes again next round. An
// empty message (a suppressed reminder) is committed unsent. It reports
// whether p is now recorded.
func (w *Watcher) send(r *round, p alerting.Pending, m reply.Message) bool {
	if p.Notification == alerting.None {
		return true
	}
	if len(m.Lines) > 0 {
		if !w.deps.Notify(m) {
			w.log.Warn("notification not sent; it is retried at the next check",
				"check", p.Check, "notification", p.Notification.String(), "text", m.String())
			return false
		}
		r.sent++
		w.log.Info("notified", "check", p.Check, "notification", p.Notification.String(), "text", m.String())
		w.announce(p, m.String())
	}
	if !p.Commit() {
		w.log.Warn("notification state not recorded: the check changed meanwhile", "check", p.Check)
		return false
	}
	return true
}

// keep marks every known check under prefix as seen this round, for checks
// that could not be observed (their host is unreachable) but must not be
// forgotten.
func (w *Watcher) keep(r *round, prefix string) {
	for name := range w.known {
		if strings.HasPrefix(name, prefix) {
			r.seen[name] = true
		}
	}
}

// prune forgets the checks that were neither observed nor kept this round:
// a builder no longer configured, a host no longer in Koji, a mount no
// longer listed.
func (w *Watcher) prune(seen map[string]bool) {
	for name := range w.known {
		if !seen[name] {
			w.tracker.Forget(name)
			delete(w.pending, name)
			delete(w.drafts, name)
			w.log.Info("check no longer configured, forgotten", "check", name)
		}
	}
	w.known = seen
}

// judgeMounts observes a host's reachability check and, when df answered,
// each mount's check; mountView builds the view of a mount read (u nil:
// df could not read it). It returns the run's result.
func (w *Watcher) judgeMounts(r *round, hostCheck, hostLabel string, h hostDisk, mounts []string,
	mountView func(mount string, u *fleet.Usage, err error) view, after func(v view, p alerting.Pending, text string)) string {
	if h.err != nil && len(h.usages) == 0 {
		w.emit(r, view{check: hostCheck, label: hostLabel, obs: alerting.Errored(h.err)})
		// The mounts' state is unknown: keep it, say nothing of it.
		w.keep(r, hostCheck+":")
		w.keep(r, PredictPrefix+hostCheck+":")
		return ResultError
	}
	w.emit(r, view{check: hostCheck, label: hostLabel, obs: alerting.Failed(false)})

	byPath := make(map[string]*fleet.Usage, len(h.usages))
	for i := range h.usages {
		byPath[h.usages[i].Path] = &h.usages[i]
	}
	result := ResultOK
	for _, m := range mounts {
		u := byPath[m]
		err := h.err
		if u == nil && err == nil {
			err = fmt.Errorf("df gave no line for %s", m)
		}
		v := mountView(m, u, err)
		switch {
		case u == nil:
			result = ResultError
		case u.Percent >= w.set.fullPercent && result == ResultOK:
			result = ResultFailing
		}
		p, text := w.observe(r, v)
		if after != nil {
			after(v, p, text)
		} else {
			w.send(r, p, message(text))
		}
		if u != nil {
			w.warnFilling(r, v, u)
		} else if w.known[PredictPrefix+v.check] {
			r.seen[PredictPrefix+v.check] = true // unknown for now: keep its state
		}
	}
	return result
}

// PredictPrefix starts the check name of a mount's early warning:
// PredictPrefix + the mount's check name.
const PredictPrefix = "predict:"

// warnFilling observes the early warning of the mount v read as u: it fires,
// once, while the mount is under disk.full_percent but predicted full within
// disk.predict_within, and resolves when the prediction goes away. Over the
// threshold the mount's ALERT speaks instead: a warning then ends silently.
func (w *Watcher) warnFilling(r *round, v view, u *fleet.Usage) {
	within := w.set.predictWithin
	if within <= 0 {
		return
	}
	p := r.predicted[v.check]
	over := u.Percent >= w.set.fullPercent
	soon := !over && p.Filling && p.FullIn <= within
	wv := view{
		check:    PredictPrefix + v.check,
		label:    "prediction for " + v.label,
		obs:      alerting.Failed(soon),
		alert:    fmt.Sprintf("%s %s full, %s (predicted full within %s)", v.label, pct(u.Percent), p, human(within)),
		clear:    fmt.Sprintf("%s %s, no longer predicted full within %s", v.label, pct(u.Percent), human(within)),
		noRepeat: true,
		warning:  true,
	}
	pend, text := w.observe(r, wv)
	if over {
		text = ""
	}
	w.send(r, pend, message(text))
}

// sample records the reading u of the mount checked under check and returns
// its fill prediction as the alerts say it (", +2.1%/h, full in about
// 1 h 25 min"), or "" while there are too few readings or the mount is not
// filling.
func (w *Watcher) sample(r *round, check string, u *fleet.Usage) string {
	w.deps.Samples.Append(check, trend.Sample{At: r.now, Percent: u.Percent, Size: u.Used + u.Avail})
	p := trend.Estimate(w.deps.Samples.Recent(check, r.now.Add(-PredictWindow)))
	if r.predicted == nil {
		r.predicted = map[string]trend.Prediction{}
	}
	r.predicted[check] = p
	if !p.Filling {
		return ""
	}
	return ", " + p.String()
}

// judgeBuilder judges one builder's mounts.
func (w *Watcher) judgeBuilder(r *round, h hostDisk) {
	full := w.set.fullPercent
	result := w.judgeMounts(r, alerting.CheckName(KindDisk, h.host), "disk "+h.host, h, w.set.mounts,
		func(mount string, u *fleet.Usage, err error) view {
			v := view{check: alerting.CheckName(KindDisk, h.host, mount), label: "disk " + h.host + " " + mount}
			if u == nil {
				v.obs = alerting.Errored(err)
				return v
			}
			v.obs = alerting.Measured(u.Percent, full)
			v.alert = fmt.Sprintf("disk: %s %s %s full%s (threshold %s)", h.host, mount, pct(u.Percent), w.sample(r, v.check, u), pct(full))
			v.clear = fmt.Sprintf("disk: %s %s %s", h.host, mount, pct(u.Percent))
			return v
		}, nil)
	w.ran(KindDisk, result)
}

// judgeShared judges the shared mounts. A mount that starts firing gets an
// outage draft, linked from its ALERT and from its REMINDERs.
func (w *Watcher) judgeShared(r *round, h hostDisk) {
	full := w.set.fullPercent
	type read struct {
		mount   string
		percent float64
		trend   string
	}
	reads := map[string]read{} // by check name
	result := w.judgeMounts(r, alerting.CheckName(KindShared, h.host), "shared mounts on "+h.host, h, w.set.sharedMounts,
		func(mount string, u *fleet.Usage, err error) view {
			v := view{check: alerting.CheckName(KindShared, h.host, mount), label: "shared mount " + mount + " on " + h.host}
			if u == nil {
				v.obs = alerting.Errored(err)
				return v
			}
			tr := w.sample(r, v.check, u)
			reads[v.check] = read{mount, u.Percent, strings.TrimPrefix(tr, ", ")}
			v.obs = alerting.Measured(u.Percent, full)
			v.alert = fmt.Sprintf("shared mount %s on %s %s full%s (threshold %s)", mount, h.host, pct(u.Percent), tr, pct(full))
			v.clear = fmt.Sprintf("shared mount %s on %s %s", mount, h.host, pct(u.Percent))
			return v
		},
		func(v view, p alerting.Pending, text string) {
			check := v.check
			if p.Notification != alerting.Firing {
				// A draft made for a Firing that never went out (the mount
				// cleared first) is not linked to anything any more.
				delete(w.pending, check)
			}
			var draftID string
			m := message(text)
			switch p.Notification {
			case alerting.Firing:
				rd := reads[check]
				draftID = w.draft(check, rd.mount, rd.percent, rd.trend, h.host, r.now)
				if draftID != "" {
					m.Links = []reply.Link{w.draftLink(draftID)}
				}
				if len(w.set.escalate) > 0 {
					m.Mentions = &reply.Mentions{Label: "escalate", Users: slices.Clone(w.set.escalate)}
				}
			case alerting.Repeat:
				if id := w.drafts[check]; id != "" && text != "" {
					m.Links = []reply.Link{w.draftLink(id)}
				}
			}
			if !w.send(r, p, m) {
				return
			}
			switch p.Notification {
			case alerting.Firing:
				delete(w.pending, check)
				if draftID != "" {
					w.drafts[check] = draftID
				}
			case alerting.Resolved:
				delete(w.drafts, check)
			}
		})
	w.ran(KindShared, result)
}

// draft returns the id of the outage draft for a shared mount that starts
// firing: the one made for it already if its ALERT has not gone out yet,
// else a new one. It returns "" when there is no draft store or the draft
// could not be stored.
func (w *Watcher) draft(check, mount string, percent float64, tr, host string, now time.Time) string {
	if d, ok := w.pending[check]; ok {
		return d.ID
	}
	if w.deps.Drafts == nil {
		return ""
	}
	d, err := w.deps.Drafts.New(outage.ForFillingMount(mount, percent, tr, host, now.UTC(), w.set.escalate, w.set.to))
	if err != nil {
		w.log.Error("outage draft for a full shared mount not made", "mount", mount, "host", host, "err", err)
		return ""
	}
	w.log.Info("outage draft made for a full shared mount", "draft", d.ID, "mount", mount, "host", host, "percent", percent)
	w.announceDraft(d)
	w.pending[check] = d
	return d.ID
}

// draftLink is the link to draft id, labelled "outage draft <id>", where
// outage.Draft.Where says it can be read.
func (w *Watcher) draftLink(id string) reply.Link {
	d := outage.Draft{ID: id}
	if w.deps.Drafts != nil {
		stored, ok, err := w.deps.Drafts.Get(id)
		switch {
		case err != nil:
			w.log.Warn("the outage draft's link: the drafts cannot be read", "draft", id, "error", err)
		case ok:
			d = stored
		}
	}
	where, _ := d.Where(w.set.publicURL, w.set.commandPrefix)
	return reply.Link{Label: "outage draft " + id, URL: where}
}

// judgeStale judges every Koji host's last check-in.
func (w *Watcher) judgeStale(r *round, s survey) {
	dbCheck := alerting.CheckName(KindStale)
	if s.hostsErr != nil {
		w.emit(r, view{check: dbCheck, label: "stale builders", obs: alerting.Errored(s.hostsErr)})
		w.keep(r, dbCheck+":")
		w.ran(KindStale, ResultError)
		return
	}
	w.emit(r, view{check: dbCheck, label: "stale builders", obs: alerting.Failed(false)})
	result := ResultOK
	var b batch
	for _, h := range s.hosts {
		never := h.LastCheckin.IsZero()
		age := h.CheckinAge // the database's now() less the check-in
		stale := h.Enabled && (never || age > w.set.staleAfter)
		if stale {
			result = ResultFailing
		}
		v := view{
			check:    alerting.CheckName(KindStale, h.Name),
			obs:      alerting.Failed(stale),
			label:    "stale builder " + h.Name,
			noRepeat: never, // said once: a host that never checked in is not news
		}
		switch {
		case never:
			v.alert = fmt.Sprintf("stale builder: %s has never checked in", h.Name)
		default:
			v.alert = fmt.Sprintf("stale builder: %s last checked in %s ago (stale after %s)", h.Name, human(age), human(w.set.staleAfter))
		}
		switch {
		case !h.Enabled:
			v.clear = fmt.Sprintf("stale builder: %s is disabled in Koji", h.Name)
		default:
			v.clear = fmt.Sprintf("stale builder: %s checked in %s ago", h.Name, human(age))
		}
		p, text := w.observe(r, v)
		b.add(p, text, h.Name)
	}
	w.sendBatch(r, &b, "stale builders")
	w.ran(KindStale, result)
}

// batchAbove is how many notifications of one kind in one round are sent
// one a line; more are folded into one line, so that a hub outage that
// silences every builder at once is one message, not forty.
const batchAbove = 3

// batch collects a round's notifications of one kind of check.
type batch struct {
	items []batchItem
}

type batchItem struct {
	p    alerting.Pending
	text string
	name string
}

func (b *batch) add(p alerting.Pending, text, name string) {
	b.items = append(b.items, batchItem{p, text, name})
}

// sendBatch sends the batch: one line per notification when there are few
// of a sort (ALERT, REMINDER, RESOLVED…), else one line per sort naming
// them all; every notification is committed only once its line went out.
func (w *Watcher) sendBatch(r *round, b *batch, what string) {
	groups := map[alerting.Notification][]batchItem{}
	var order []alerting.Notification
	for _, it := range b.items {
		if it.p.Notification == alerting.None || it.text == "" {
			w.send(r, it.p, message(it.text))
			continue
		}
		if _, ok := groups[it.p.Notification]; !ok {
			order = append(order, it.p.Notification)
		}
		groups[it.p.Notification] = append(groups[it.p.Notification], it)
	}
	for _, n := range order {
		items := groups[n]
		if len(items) <= batchAbove {
			for _, it := range items {
				w.send(r, it.p, message(it.text))
			}
			continue
		}
		names := make([]string, 0, len(items))
		for _, it := range items {
			names = append(names, it.name)
		}
		shown := names
		if len(shown) > 10 {
			shown = append(append([]string{}, names[:10]...), fmt.Sprintf("and %d more", len(names)-10))
		}
		tag, _, _ := strings.Cut(items[0].text, " ")
		line := fmt.Sprintf("%s %s (%d): %s", tag, what, len(items), strings.Join(shown, ", "))
		if !w.deps.Notify(message(line)) {
			w.log.Warn("notification not sent; it is retried at the next check", "what", what, "count", len(items))
			continue
		}
		r.sent++
		w.log.Info("notified", "what", what, "notification", n.String(), "count", len(items), "text", line)
		for _, it := range items {
			w.announce(it.p, it.text)
			it.p.Commit()
		}
	}
}

// judgeConnections judges the Koji role's share of max_connections.
func (w *Watcher) judgeConnections(r *round, s survey) {
	role := w.set.dbUser
	v := view{check: alerting.CheckName(KindConnections, role), label: "connections " + role}
	switch {
	case s.connsErr != nil:
		v.obs = alerting.Errored(s.connsErr)
	case s.maxConns <= 0:
		v.obs = alerting.Errored(errors.New("max_connections reads " + fmt.Sprint(s.maxConns)))
	default:
		p := float64(s.conns) * 100 / float64(s.maxConns)
		v.obs = alerting.Measured(p, w.set.connPercent)
		v.alert = fmt.Sprintf("connections: %s holds %d of %d connections (%s, threshold %s)",
			role, s.conns, s.maxConns, pct(p), pct(w.set.connPercent))
		v.clear = fmt.Sprintf("connections: %s holds %d of %d connections (%s)", role, s.conns, s.maxConns, pct(p))
	}
	w.emit(r, v)
	switch {
	case v.obs.Err != nil:
		w.ran(KindConnections, ResultError)
	case v.obs.Value >= w.set.connPercent:
		w.ran(KindConnections, ResultFailing)
	default:
		w.ran(KindConnections, ResultOK)
	}
}

// ran counts a check run.
func (w *Watcher) ran(kind, result string) {
	if w.deps.Metrics != nil {
		w.deps.Metrics.CheckRan(kind, result)
	}
}
