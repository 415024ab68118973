package bot

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// fakeClock is a clock that only moves when the code under test sleeps.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return nil
}

func fakePacer(c *fakeClock, perSecond float64, burst int) *pacer {
	return &pacer{lim: rate.NewLimiter(rate.Limit(perSecond), burst), now: c.Now, sleep: c.Sleep}
}

// drain runs writeLoop until n lines were sent and returns them with the
// fake time at which each went.
func drain(t *testing.T, o *outbox, p *pacer, clock *fakeClock, n int) ([]string, []time.Duration) {
	t.Helper()
	start := clock.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var sent []string
	var at []time.Duration
	loopCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeLoop(loopCtx, o, p, func(line string) {
			sent = append(sent, line)
			at = append(at, clock.Now().Sub(start))
			if len(sent) == n {
				stop()
			}
		})
	}()
	select {
	case <-done:
	case <-ctx.Done():
		stop()
		<-done
		t.Fatalf("sent %d of %d lines: %q", len(sent), n, sent)
	}
	return sent, at
}

func TestWriteLoopPacing(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	o := newOutbox(slog.New(slog.DiscardHandler))
	var msg []string
	for i := range 10 {
		msg = append(msg, fmt.Sprint("PRIVMSG #c :line ", i))
	}
	o.push(laneReply, msg)
	sent, at := drain(t, o, fakePacer(clock, 1, 4), clock, 10)
	if !reflect.DeepEqual(sent, msg) {
		t.Errorf("sent %q, want %q", sent, msg)
	}
	want := []time.Duration{0, 0, 0, 0, 1 * time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second, 6 * time.Second}
	if !reflect.DeepEqual(at, want) {
		t.Errorf("send times %v, want %v (burst 4, then 1/s)", at, want)
	}
	// InspIRCd's default class: 10 lines of credit, refilled at 1/s. Check
	// the server's debt never reaches the threshold for any prefix.
	for i := range at {
		debt := float64(i+1) - at[i].Seconds()
		if debt >= 10 {
			t.Errorf("after line %d at %v the server-side penalty is %.0f s", i, at[i], debt)
		}
	}
}

func TestWriteLoopResumesAfterIdle(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	o := newOutbox(slog.New(slog.DiscardHandler))
	p := fakePacer(clock, 1, 2)
	o.push(laneReply, []string{"a", "b", "c"})
	_, at := drain(t, o, p, clock, 3)
	if want := []time.Duration{0, 0, time.Second}; !reflect.DeepEqual(at, want) {
		t.Fatalf("first burst at %v, want %v", at, want)
	}
	clock.Sleep(context.Background(), 10*time.Second) // the bucket refills, but only to its burst
	o.push(laneReply, []string{"d", "e", "f"})
	_, at = drain(t, o, p, clock, 3)
	if want := []time.Duration{0, 0, time.Second}; !reflect.DeepEqual(at, want) {
		t.Errorf("after idling, lines at %v, want %v", at, want)
	}
}

func TestWriteLoopStopsWithoutLosingLines(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	o := newOutbox(slog.New(slog.DiscardHandler))
	p := fakePacer(clock, 1, 1)
	o.push(laneNotify, []string{"n1", "n2", "n3"})
	sent, _ := drain(t, o, p, clock, 1)
	if !reflect.DeepEqual(sent, []string{"n1"}) {
		t.Fatalf("sent %q", sent)
	}
	if got := o.len(); got != 2 {
		t.Fatalf("%d lines left after the writer stopped, want 2", got)
	}
	// A new connection's writer picks up where the old one stopped.
	sent, _ = drain(t, o, p, clock, 2)
	if !reflect.DeepEqual(sent, []string{"n2", "n3"}) {
		t.Errorf("next writer sent %q", sent)
	}
}

func TestWriteLoopWeighsWhois(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	o := newOutbox(slog.New(slog.DiscardHandler))
	o.push(laneControl, []string{"WHOIS alice"})
	o.push(laneControl, []string{"JOIN #c"})
	o.push(laneReply, []string{"PRIVMSG #c :x"})
	_, at := drain(t, o, fakePacer(clock, 1, 4), clock, 3)
	// 2 + 2 tokens use the burst; the PRIVMSG waits a second.
	if want := []time.Duration{0, 0, time.Second}; !reflect.DeepEqual(at, want) {
		t.Errorf("send times %v, want %v", at, want)
	}
	if got := lineCost("PRIVMSG #c :WHOIS"); got != 1 {
		t.Errorf("lineCost(PRIVMSG) = %d", got)
	}
}

func TestPacerCapsCostAtBurst(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	p := fakePacer(clock, 1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.wait(ctx, 2); err != nil {
		t.Fatalf("a cost above the burst blocked: %v", err)
	}
}

func TestOutboxOrder(t *testing.T) {
	o := newOutbox(slog.New(slog.DiscardHandler))
	o.push(laneBulk, []string{"bulk1", "bulk2"})
	o.push(laneReply, []string{"r1a", "r1b"})
	o.push(laneNotify, []string{"n1"})
	o.push(laneReply, []string{"r2"})
	o.push(laneControl, []string{"WHOIS x"})
	var got []string
	for {
		l, ok := o.pop()
		if !ok {
			break
		}
		got = append(got, l)
	}
	want := []string{"WHOIS x", "r1a", "r1b", "n1", "r2", "bulk1", "bulk2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}

func TestOutboxBoundsAndClear(t *testing.T) {
	o := newOutbox(slog.New(slog.DiscardHandler))
	for i := range laneCap[laneNotify] + 3 {
		o.push(laneNotify, []string{fmt.Sprint("n", i)})
	}
	o.push(laneControl, []string{"JOIN #a"})
	o.clearControl()
	first, _ := o.pop()
	if first != "n3" {
		t.Errorf("first line %q, want n3 (the 3 oldest dropped, control cleared)", first)
	}
	if got, want := o.len(), laneCap[laneNotify]-1; got != want {
		t.Errorf("%d lines left, want %d", got, want)
	}
	o.push(laneReply, nil)
	if got, want := o.len(), laneCap[laneNotify]-1; got != want {
		t.Errorf("an empty message changed the queue: %d lines, want %d", got, want)
	}
}

func TestBackoff(t *testing.T) {
	bo := backoff{min: time.Second, max: 8 * time.Second}
	caps := []time.Duration{1, 2, 4, 8, 8, 8}
	for i, c := range caps {
		c *= time.Second
		d := bo.next()
		if d < c/2 || d > c {
			t.Errorf("attempt %d: wait %v, want within [%v, %v]", i, d, c/2, c)
		}
	}
	bo.reset()
	if d := bo.next(); d > time.Second {
		t.Errorf("after reset: wait %v, want <= 1s", d)
	}
}

func TestUserLimits(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	u := newUserLimits(0.5, 2)
	u.now = clock.Now
	type step struct{ ok, warn bool }
	var got []step
	for range 4 {
		ok, warn := u.allow("account:alice")
		got = append(got, step{ok, warn})
	}
	want := []step{{true, false}, {true, false}, {false, true}, {false, false}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("alice: %v, want %v", got, want)
	}
	if ok, _ := u.allow("account:bob"); !ok {
		t.Error("bob limited by alice's commands")
	}
	clock.Sleep(context.Background(), 2*time.Second)
	if ok, _ := u.allow("account:alice"); !ok {
		t.Error("alice still limited after the bucket refilled")
	}
	if ok, warn := u.allow("account:alice"); ok || !warn {
		t.Errorf("alice limited again: ok=%v warn=%v, want a new warning", ok, warn)
	}
}
