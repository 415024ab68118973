package irc

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"testing/synctest"
	"time"
)

// Recipients of the outbox tests.
var (
	alice  = recipient{key: "account:alice"}
	notify = recipient{key: "notify:#c"}
)

// drain runs writeLoop until n lines were sent and returns them with the
// time, since drain began, at which each went. Run it in a synctest bubble,
// where the pacer's sleeps take no real time.
func drain(t *testing.T, o *outbox, p *pacer, n int) ([]string, []time.Duration) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	var sent []string
	var at []time.Duration
	loopCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeLoop(loopCtx, o, p, func(line string) {
			sent = append(sent, line)
			at = append(at, time.Since(start))
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
	synctest.Test(t, func(t *testing.T) {
		o := newOutbox(slog.New(slog.DiscardHandler))
		var msg []string
		for i := range 10 {
			msg = append(msg, fmt.Sprint("PRIVMSG #c :line ", i))
		}
		o.pushTo(alice, msg, false)
		sent, at := drain(t, o, newPacer(1, 4), 10)
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
	})
}

func TestWriteLoopResumesAfterIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newOutbox(slog.New(slog.DiscardHandler))
		p := newPacer(1, 2)
		o.pushTo(alice, []string{"a", "b", "c"}, false)
		_, at := drain(t, o, p, 3)
		if want := []time.Duration{0, 0, time.Second}; !reflect.DeepEqual(at, want) {
			t.Fatalf("first burst at %v, want %v", at, want)
		}
		time.Sleep(10 * time.Second) // the bucket refills, but only to its burst
		o.pushTo(alice, []string{"d", "e", "f"}, false)
		_, at = drain(t, o, p, 3)
		if want := []time.Duration{0, 0, time.Second}; !reflect.DeepEqual(at, want) {
			t.Errorf("after idling, lines at %v, want %v", at, want)
		}
	})
}

func TestWriteLoopStopsWithoutLosingLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newOutbox(slog.New(slog.DiscardHandler))
		p := newPacer(1, 1)
		o.pushTo(notify, []string{"n1", "n2", "n3"}, false)
		sent, _ := drain(t, o, p, 1)
		if !reflect.DeepEqual(sent, []string{"n1"}) {
			t.Fatalf("sent %q", sent)
		}
		if got := o.len(); got != 2 {
			t.Fatalf("%d lines left after the writer stopped, want 2", got)
		}
		// A new connection's writer picks up where the old one stopped.
		sent, _ = drain(t, o, p, 2)
		if !reflect.DeepEqual(sent, []string{"n2", "n3"}) {
			t.Errorf("next writer sent %q", sent)
		}
	})
}

func TestWriteLoopWeighsWhois(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newOutbox(slog.New(slog.DiscardHandler))
		o.push(laneControl, []string{"WHOIS alice"})
		o.push(laneControl, []string{"JOIN #c"})
		o.pushTo(alice, []string{"PRIVMSG #c :x"}, false)
		_, at := drain(t, o, newPacer(1, 4), 3)
		// 2 + 2 tokens use the burst; the PRIVMSG waits a second.
		if want := []time.Duration{0, 0, time.Second}; !reflect.DeepEqual(at, want) {
			t.Errorf("send times %v, want %v", at, want)
		}
		if got := lineCost("PRIVMSG #c :WHOIS"); got != 1 {
			t.Errorf("lineCost(PRIVMSG) = %d", got)
		}
	})
}

func TestPacerCapsCostAtBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(1, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := p.wait(ctx, 2); err != nil {
			t.Fatalf("a cost above the burst blocked: %v", err)
		}
	})
}

func TestOutboxOrder(t *testing.T) {
	o := newOutbox(slog.New(slog.DiscardHandler))
	o.push(laneBulk, []string{"bulk1", "bulk2"})
	o.pushTo(alice, []string{"r1a", "r1b"}, false)
	o.pushTo(notify, []string{"n1"}, false)
	o.pushTo(alice, []string{"r2"}, false)
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
	for i := range notifyCap + 3 {
		o.pushTo(notify, []string{fmt.Sprint("n", i)}, false)
	}
	o.push(laneControl, []string{"JOIN #a"})
	o.clearControl()
	first, _ := o.pop()
	if first != "n3" {
		t.Errorf("first line %q, want n3 (the 3 oldest dropped, control cleared)", first)
	}
	if got, want := o.len(), notifyCap-1; got != want {
		t.Errorf("%d lines left, want %d", got, want)
	}
	o.pushTo(alice, nil, false)
	if got, want := o.len(), notifyCap-1; got != want {
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

// popAll empties o and returns its lines in order.
func popAll(o *outbox) []string {
	var got []string
	for {
		l, ok := o.pop()
		if !ok {
			return got
		}
		got = append(got, l)
	}
}

// TestOutboxFairAcrossRecipients: recipients are served in turn, a whole
// message at a time, so one caller's many replies cannot hold another's.
func TestOutboxFairAcrossRecipients(t *testing.T) {
	o := newOutbox(slog.New(slog.DiscardHandler))
	bob := recipient{key: "account:bob"}
	o.pushTo(alice, []string{"a1x", "a1y"}, false)
	o.pushTo(alice, []string{"a2"}, false)
	o.pushTo(alice, []string{"a3"}, false)
	o.pushTo(bob, []string{"b1"}, false)
	want := []string{"a1x", "a1y", "b1", "a2", "a3"}
	if got := popAll(o); !reflect.DeepEqual(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}

// TestOutboxAnonymousServedLastAndDroppedFirst: five nicks without an
// account flood; a logged-in caller's reply goes before all of theirs
// (even between the lines of one of their messages), their queues stay
// bounded, and a kept message is never dropped.
func TestOutboxAnonymousServedLastAndDroppedFirst(t *testing.T) {
	o := newOutbox(slog.New(slog.DiscardHandler))
	for i := range 5 {
		r := recipient{key: fmt.Sprint("nick:flood", i), anonymous: true}
		for j := range 10 {
			o.pushTo(r, []string{fmt.Sprintf("f%d-%d a", i, j), fmt.Sprintf("f%d-%d b", i, j)}, false)
		}
	}
	if first, _ := o.pop(); first == "" {
		t.Fatal("nothing queued")
	}
	o.pushTo(alice, []string{"confirm: alice"}, true)
	if next, _ := o.pop(); next != "confirm: alice" {
		t.Errorf("after the operator's reply was queued, %q went first", next)
	}
	rest := popAll(o)
	// One message is half sent; the anonymous class holds at most
	// anonymousCap messages of two lines.
	if len(rest) > 2*anonymousCap {
		t.Errorf("%d anonymous lines left, want at most %d", len(rest), 2*anonymousCap)
	}
	perNick := map[string]int{}
	for _, l := range rest {
		perNick[l[:2]]++
	}
	for nick, n := range perNick {
		if n > 2*anonymousPerRecipient+1 {
			t.Errorf("%s kept %d lines, want at most %d", nick, n, 2*anonymousPerRecipient+1)
		}
	}

	// Kept messages survive any flood of their recipient.
	o = newOutbox(slog.New(slog.DiscardHandler))
	anon := recipient{key: "nick:x", anonymous: true}
	o.pushTo(anon, []string{"kept"}, true)
	for i := range 20 {
		o.pushTo(anon, []string{fmt.Sprint("n", i)}, false)
	}
	if got := popAll(o); len(got) == 0 || got[0] != "kept" {
		t.Errorf("kept message dropped: %q", got)
	}
}
