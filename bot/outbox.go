package bot

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Lanes of the outbox, in the order the writer serves them. Replies and
// notifications share one FIFO order between them; bulk (long private
// output) waits until both are empty so that it never holds a channel
// reply back.
const (
	laneControl = iota // JOIN, WHOIS: short and urgent, cleared on disconnect
	laneReply          // replies to commands
	laneNotify         // watcher notifications: kept while disconnected
	laneBulk           // the whole of a summarised reply, by NOTICE
	numLanes
)

// Lane bounds, in messages (a message is all the lines of one reply). When
// a lane is full its oldest message is dropped and logged.
var laneCap = [numLanes]int{
	laneControl: 64,
	laneReply:   256,
	laneNotify:  64,
	laneBulk:    16,
}

var laneName = [numLanes]string{"control", "reply", "notify", "bulk"}

// message is the lines of one reply, sent in order.
type message struct {
	seq   uint64
	lines []string
}

// outbox holds every line the bot will send, across reconnects: one queue
// per connection's single writer. It is safe for concurrent use.
type outbox struct {
	log   *slog.Logger
	mu    sync.Mutex
	lanes [numLanes][]*message
	seq   uint64
	// wake has a value when lines were added since the writer last looked.
	wake chan struct{}
}

func newOutbox(log *slog.Logger) *outbox {
	return &outbox{log: log, wake: make(chan struct{}, 1)}
}

// push queues the lines of one message on a lane.
func (o *outbox) push(lane int, lines []string) {
	if len(lines) == 0 {
		return
	}
	o.mu.Lock()
	o.seq++
	q := append(o.lanes[lane], &message{seq: o.seq, lines: lines})
	if len(q) > laneCap[lane] {
		dropped := q[0]
		q = q[1:]
		o.log.Warn("outbound queue full: dropped the oldest message", "lane", laneName[lane],
			"lines", len(dropped.lines), "first", dropped.lines[0])
	}
	o.lanes[lane] = q
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// next returns the lane whose head line goes next, or -1 when empty.
// o.mu must be held.
func (o *outbox) next() int {
	if len(o.lanes[laneControl]) > 0 {
		return laneControl
	}
	r, n := o.lanes[laneReply], o.lanes[laneNotify]
	switch {
	case len(r) > 0 && (len(n) == 0 || r[0].seq < n[0].seq):
		return laneReply
	case len(n) > 0:
		return laneNotify
	case len(o.lanes[laneBulk]) > 0:
		return laneBulk
	}
	return -1
}

// peek returns the next line without removing it.
func (o *outbox) peek() (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	lane := o.next()
	if lane < 0 {
		return "", false
	}
	return o.lanes[lane][0].lines[0], true
}

// pop removes and returns the next line.
func (o *outbox) pop() (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	lane := o.next()
	if lane < 0 {
		return "", false
	}
	head := o.lanes[lane][0]
	line := head.lines[0]
	head.lines = head.lines[1:]
	if len(head.lines) == 0 {
		o.lanes[lane][0] = nil
		o.lanes[lane] = o.lanes[lane][1:]
	}
	return line, true
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
		ready := o.next() >= 0
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

// pacer spaces lines out with a token bucket. now and sleep are injected so
// that tests can run the clock.
type pacer struct {
	lim   *rate.Limiter
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

func newPacer(perSecond float64, burst int) *pacer {
	return &pacer{lim: rate.NewLimiter(rate.Limit(perSecond), burst), now: time.Now, sleep: sleepCtx}
}

// wait returns when a line costing cost tokens may go, or with ctx's
// error (giving the tokens back). A cost above the burst is capped to it.
func (p *pacer) wait(ctx context.Context, cost int) error {
	cost = min(max(cost, 1), p.lim.Burst())
	now := p.now()
	r := p.lim.ReserveN(now, cost)
	if d := r.DelayFrom(now); d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			r.CancelAt(p.now())
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		r.CancelAt(p.now())
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
