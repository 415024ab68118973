package irc

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Lanes of the outbox, in the order the writer serves them. Control lines
// (JOIN, WHOIS) go first; then the queues of callers known to services and
// of notifications, one queue per recipient served in turn; then the queues
// of callers who are not logged in, likewise; bulk (the long private copy
// of a summarised reply) waits until all of those are empty, so that it
// never holds a channel reply back.
const (
	laneControl = iota // JOIN, WHOIS: short and urgent, cleared on disconnect
	laneBulk           // the whole of a summarised reply, by NOTICE
	numLanes
)

// The classes of recipient queues, in the order they are served.
const (
	classTrusted   = iota // callers logged in to services, exec, and notifications
	classAnonymous        // callers not logged in: served last, dropped first
	numClasses
)

// Bounds, in messages (a message is all the lines of one reply). When a
// bound is passed the oldest message that may be dropped goes, and is
// logged; a kept message (a confirmation prompt, a job's result) is never
// dropped.
var laneCap = [numLanes]int{
	laneControl: 64,
	laneBulk:    16,
}

const (
	// anonymousPerRecipient bounds the replies queued for one caller who
	// is not logged in: a flood cannot queue more than this for each nick.
	anonymousPerRecipient = 2
	// anonymousCap bounds the replies queued for all of them together.
	anonymousCap = 8
	// trustedCap bounds the droppable replies queued for callers known to
	// services; past it their oldest droppable reply goes.
	trustedCap = 512
	// notifyCap bounds each notification queue; they are kept while
	// disconnected, the oldest going first.
	notifyCap = 64
)

var laneName = [numLanes]string{"control", "bulk"}

// message is the lines of one reply, sent in order.
type message struct {
	lines []string
	// keep marks a message that is never dropped (confirmation prompts,
	// job results).
	keep bool
}

// recipient names the queue a reply waits in: the caller it answers (or
// the notification channel) and whether that caller is logged in.
type recipient struct {
	key       string // "account:alice", "nick:bob", "notify:#chan"
	anonymous bool
}

// recipientQueue is one recipient's messages, oldest first.
type recipientQueue struct {
	key  string
	msgs []*message
}

// fairQueues serves several recipients' queues in turn, a whole message
// at a time.
type fairQueues struct {
	order  []*recipientQueue // recipients with messages, next first
	byKey  map[string]*recipientQueue
	active *recipientQueue // whose message is being sent, or nil
}

func (f *fairQueues) messages() int {
	n := 0
	for _, q := range f.order {
		n += len(q.msgs)
	}
	return n
}

// head is the queue whose line goes next, or nil.
func (f *fairQueues) head() *recipientQueue {
	if f.active != nil {
		return f.active
	}
	if len(f.order) == 0 {
		return nil
	}
	return f.order[0]
}

// popLine removes the next line; when its message is done the queue goes
// to the back of the turn.
func (f *fairQueues) popLine() (string, bool) {
	q := f.head()
	if q == nil {
		return "", false
	}
	m := q.msgs[0]
	line := m.lines[0]
	m.lines = m.lines[1:]
	f.active = q
	if len(m.lines) == 0 {
		q.msgs[0] = nil
		q.msgs = q.msgs[1:]
		f.active = nil
		f.remove(q)
		if len(q.msgs) > 0 {
			f.order = append(f.order, q)
		} else {
			delete(f.byKey, q.key)
		}
	}
	return line, true
}

func (f *fairQueues) remove(q *recipientQueue) {
	for i, x := range f.order {
		if x == q {
			f.order = append(f.order[:i:i], f.order[i+1:]...)
			return
		}
	}
}

// dropOldest removes the oldest droppable message of q (never the one
// being sent) and returns it, or nil.
func (f *fairQueues) dropOldest(q *recipientQueue) *message {
	for i, m := range q.msgs {
		if m.keep || (i == 0 && f.active == q) {
			continue
		}
		q.msgs = append(q.msgs[:i:i], q.msgs[i+1:]...)
		if len(q.msgs) == 0 {
			f.remove(q)
			delete(f.byKey, q.key)
		}
		return m
	}
	return nil
}

// longest is the queue with the most messages, or nil.
func (f *fairQueues) longest(match func(*recipientQueue) bool) *recipientQueue {
	var best *recipientQueue
	for _, q := range f.order {
		if match(q) && (best == nil || len(q.msgs) > len(best.msgs)) {
			best = q
		}
	}
	return best
}

// outbox holds every line the bot will send, across reconnects: one queue
// per connection's single writer. It is safe for concurrent use.
type outbox struct {
	log     *slog.Logger
	mu      sync.Mutex
	lanes   [numLanes][]*message
	classes [numClasses]fairQueues
	// wake has a value when lines were added since the writer last looked.
	wake chan struct{}
}

func newOutbox(log *slog.Logger) *outbox {
	o := &outbox{log: log, wake: make(chan struct{}, 1)}
	for i := range o.classes {
		o.classes[i].byKey = map[string]*recipientQueue{}
	}
	return o
}

// push queues the lines of one message on a lane (control or bulk).
func (o *outbox) push(lane int, lines []string) {
	if len(lines) == 0 {
		return
	}
	o.mu.Lock()
	q := append(o.lanes[lane], &message{lines: lines})
	if len(q) > laneCap[lane] {
		dropped := q[0]
		q = q[1:]
		o.log.Warn("outbound queue full: dropped the oldest message", "lane", laneName[lane],
			"lines", len(dropped.lines), "first", dropped.lines[0])
	}
	o.lanes[lane] = q
	o.mu.Unlock()
	o.signal()
}

// pushTo queues one message for a recipient. keep marks a message that is
// never dropped.
func (o *outbox) pushTo(r recipient, lines []string, keep bool) {
	if len(lines) == 0 {
		return
	}
	class := classTrusted
	if r.anonymous {
		class = classAnonymous
	}
	o.mu.Lock()
	f := &o.classes[class]
	q := f.byKey[r.key]
	if q == nil {
		q = &recipientQueue{key: r.key}
		f.byKey[r.key] = q
		f.order = append(f.order, q)
	}
	q.msgs = append(q.msgs, &message{lines: lines, keep: keep})
	o.bound(f, q, r)
	o.mu.Unlock()
	o.signal()
}

// bound drops what a push put over the limits. o.mu must be held.
func (o *outbox) bound(f *fairQueues, q *recipientQueue, r recipient) {
	var dropped []*message
	switch {
	case r.anonymous:
		for len(q.msgs) > anonymousPerRecipient {
			m := f.dropOldest(q)
			if m == nil {
				break
			}
			dropped = append(dropped, m)
		}
		for f.messages() > anonymousCap {
			l := f.longest(func(*recipientQueue) bool { return true })
			m := f.dropOldest(l)
			if m == nil {
				break
			}
			dropped = append(dropped, m)
		}
	case strings.HasPrefix(r.key, "notify:"):
		for len(q.msgs) > notifyCap {
			m := f.dropOldest(q)
			if m == nil {
				break
			}
			dropped = append(dropped, m)
		}
	default:
		for f.messages() > trustedCap {
			l := f.longest(func(x *recipientQueue) bool { return !strings.HasPrefix(x.key, "notify:") })
			if l == nil {
				break
			}
			m := f.dropOldest(l)
			if m == nil {
				break
			}
			dropped = append(dropped, m)
		}
	}
	for _, m := range dropped {
		o.log.Warn("outbound queue full: dropped a message", "recipient", r.key, "anonymous", r.anonymous,
			"lines", len(m.lines), "first", m.lines[0])
	}
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// nextLine returns the next line, and removes it when take is set. o.mu
// must be held.
func (o *outbox) nextLine(take bool) (string, bool) {
	if q := o.lanes[laneControl]; len(q) > 0 {
		return o.laneLine(laneControl, take), true
	}
	for i := range o.classes {
		f := &o.classes[i]
		if q := f.head(); q != nil {
			if !take {
				return q.msgs[0].lines[0], true
			}
			return f.popLine()
		}
	}
	if q := o.lanes[laneBulk]; len(q) > 0 {
		return o.laneLine(laneBulk, take), true
	}
	return "", false
}

func (o *outbox) laneLine(lane int, take bool) string {
	head := o.lanes[lane][0]
	line := head.lines[0]
	if take {
		head.lines = head.lines[1:]
		if len(head.lines) == 0 {
			o.lanes[lane][0] = nil
			o.lanes[lane] = o.lanes[lane][1:]
		}
	}
	return line
}

// peek returns the next line without removing it.
func (o *outbox) peek() (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.nextLine(false)
}

// pop removes and returns the next line.
func (o *outbox) pop() (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.nextLine(true)
}

// len is the number of lines queued.
func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, q := range o.lanes {
		for _, m := range q {
			n += len(m.lines)
		}
	}
	for i := range o.classes {
		for _, q := range o.classes[i].order {
			for _, m := range q.msgs {
				n += len(m.lines)
			}
		}
	}
	return n
}

// clearControl drops the control lane: its JOINs and WHOISes belong to a
// connection that has ended.
func (o *outbox) clearControl() {
	o.mu.Lock()
	o.lanes[laneControl] = nil
	o.mu.Unlock()
}

// waitLine blocks until a line is queued or ctx ends.
func (o *outbox) waitLine(ctx context.Context) error {
	for {
		o.mu.Lock()
		_, ready := o.nextLine(false)
		o.mu.Unlock()
		if ready {
			return nil
		}
		select {
		case <-o.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pacer spaces lines out with a token bucket.
type pacer struct {
	lim *rate.Limiter
}

func newPacer(perSecond float64, burst int) *pacer {
	return &pacer{lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// wait returns when a line costing cost tokens may go, or with ctx's
// error (giving the tokens back). A cost above the burst is capped to it.
func (p *pacer) wait(ctx context.Context, cost int) error {
	cost = min(max(cost, 1), p.lim.Burst())
	now := time.Now()
	r := p.lim.ReserveN(now, cost)
	if d := r.DelayFrom(now); d > 0 {
		if err := sleepCtx(ctx, d); err != nil {
			r.CancelAt(time.Now())
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		r.CancelAt(time.Now())
		return err
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lineCost is what a line costs in the token bucket: the commands InspIRCd
// charges double for (WHOIS, JOIN: penalty 2) count twice, so that the
// bucket keeps the server's own accounting below its threshold.
func lineCost(line string) int {
	cmd, _, _ := strings.Cut(line, " ")
	switch strings.ToUpper(cmd) {
	case "WHOIS", "JOIN":
		return 2
	}
	return 1
}

// writeLoop is a connection's single writer: it takes lines from the outbox
// at the pacer's rate and hands them to send, until ctx ends. A line is
// taken from the outbox only once it may be sent, so lines still queued
// when the connection drops go out on the next one.
func writeLoop(ctx context.Context, o *outbox, p *pacer, send func(line string)) {
	for {
		if err := o.waitLine(ctx); err != nil {
			return
		}
		line, ok := o.peek()
		if !ok {
			continue
		}
		if err := p.wait(ctx, lineCost(line)); err != nil {
			return
		}
		if line, ok := o.pop(); ok {
			send(line)
		}
	}
}
