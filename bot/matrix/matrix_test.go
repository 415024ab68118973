package matrix

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/config"
)

// fakeHS is a small homeserver: it accepts sends (refusing the first
// limitSends with 429), joins, and answers /sync from a script.
type fakeHS struct {
	mu         sync.Mutex
	limitSends int
	retryMS    int
	sendStatus int // when set, every send fails with it
	sends      []map[string]any
	attempts   []time.Time
	// syncStatus gives, for the n-th /sync (from 0), the status to answer
	// and the retry_after_ms of a 429; a status of 0 is success.
	syncStatus func(n int) (status, retryMS int)
	syncs      []time.Time
	onSync     func(n int)
}

func (f *fakeHS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/send/m.room.message/"):
		f.mu.Lock()
		defer f.mu.Unlock()
		f.attempts = append(f.attempts, time.Now())
		if f.sendStatus != 0 {
			w.WriteHeader(f.sendStatus)
			fmt.Fprint(w, `{"errcode":"M_UNKNOWN","error":"broken"}`)
			return
		}
		if f.limitSends > 0 {
			f.limitSends--
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":%d}`, f.retryMS)
			return
		}
		var c map[string]any
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.sends = append(f.sends, c)
		fmt.Fprintf(w, `{"event_id":"$e%d"}`, len(f.sends))
	case strings.Contains(r.URL.Path, "/join/"):
		fmt.Fprint(w, `{"room_id":"!room:test"}`)
	case strings.HasSuffix(r.URL.Path, "/sync"):
		f.mu.Lock()
		n := len(f.syncs)
		f.syncs = append(f.syncs, time.Now())
		status, retry := 0, 0
		if f.syncStatus != nil {
			status, retry = f.syncStatus(n)
		}
		on := f.onSync
		f.mu.Unlock()
		if on != nil {
			on(n)
		}
		switch status {
		case 0:
			select { // a long poll that returns soon
			case <-r.Context().Done():
			case <-time.After(20 * time.Millisecond):
			}
			fmt.Fprintf(w, `{"next_batch":"s%d"}`, n+1)
		case http.StatusTooManyRequests:
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":%d}`, retry)
		default:
			w.WriteHeader(status)
			fmt.Fprint(w, `<html>bad gateway</html>`)
		}
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"errcode":"M_UNRECOGNIZED","error":"not here"}`)
	}
}

// memKV is a state store in memory.
type memKV struct {
	mu sync.Mutex
	m  map[string]string
}

func (k *memKV) Get(_ context.Context, key string) (string, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	return v, ok, nil
}

func (k *memKV) Put(_ context.Context, key, value string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[key] = value
	return nil
}

type nopHandler struct{}

func (nopHandler) Handle(context.Context, commands.Request, commands.Output) {}

// newTestBot returns a Bot talking to f, connected but not running.
func newTestBot(t *testing.T, f *fakeHS, maxLines int, backoffMax time.Duration) (*Bot, *memKV) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	kv := &memKV{m: map[string]string{}}
	b, err := New(Options{
		Config: config.Matrix{Homeserver: srv.URL, UserID: "@kojibot:test", AccessToken: "tok",
			Rooms: []string{"!room:test"}, MaxLines: maxLines},
		Handler: nopHandler{}, State: kv, BackoffMax: backoffMax,
		LongOutput: func(string) (string, bool) { return "http://web/long/1", true },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b, kv
}

// TestSendHonoursRetryAfter: a send refused with 429 is retried after
// retry_after_ms (not the one-second default), and then succeeds.
func TestSendHonoursRetryAfter(t *testing.T) {
	f := &fakeHS{limitSends: 2, retryMS: 150}
	b, _ := newTestBot(t, f, 30, time.Second)
	start := time.Now()
	evt := b.send(context.Background(), "!room:test", b.notice("hello", "", nil))
	took := time.Since(start)
	if evt != "$e1" {
		t.Fatalf("send returned %q, want $e1", evt)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.attempts) != 3 {
		t.Fatalf("%d attempts, want 3 (two refused)", len(f.attempts))
	}
	for i := 1; i < 3; i++ {
		if gap := f.attempts[i].Sub(f.attempts[i-1]); gap < 150*time.Millisecond || gap > 900*time.Millisecond {
			t.Errorf("attempt %d came %s after the 429, want retry_after_ms (150ms)", i+1, gap)
		}
	}
	if took > 2*time.Second {
		t.Errorf("send took %s", took)
	}
}

// TestSendOtherErrorNotRetried: an error other than 429 gives up at once.
func TestSendOtherErrorNotRetried(t *testing.T) {
	f := &fakeHS{sendStatus: http.StatusForbidden}
	b, _ := newTestBot(t, f, 30, time.Second)
	if evt := b.send(context.Background(), "!room:test", b.notice("hello", "", nil)); evt != "" {
		t.Fatalf("send returned %q, want failure", evt)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.attempts) != 1 {
		t.Errorf("%d attempts, want 1", len(f.attempts))
	}
}

// runBot runs b until stop returns true (checked every 10ms) or 10s pass,
// then stops it.
func runBot(t *testing.T, b *Bot, stop func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !stop() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestSyncHonoursRetryAfter: a /sync refused with 429 is retried after
// retry_after_ms even though the backoff would retry sooner.
func TestSyncHonoursRetryAfter(t *testing.T) {
	f := &fakeHS{syncStatus: func(n int) (int, int) {
		if n == 0 {
			return http.StatusTooManyRequests, 1500 // longer than the 1s default
		}
		return 0, 0
	}}
	b, kv := newTestBot(t, f, 30, 10*time.Millisecond)
	runBot(t, b, func() bool { v, _, _ := kv.Get(context.Background(), keyNextBatch); return v != "" })
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.syncs) < 2 {
		t.Fatalf("%d syncs, want a retry", len(f.syncs))
	}
	if gap := f.syncs[1].Sub(f.syncs[0]); gap < 1500*time.Millisecond || gap > 3*time.Second {
		t.Errorf("retried the sync %s after the 429, want retry_after_ms (1.5s)", gap)
	}
	if v, _, _ := kv.Get(context.Background(), keyNextBatch); v == "" {
		t.Error("the sync token was not kept")
	}
}

// TestSyncBacksOffWhileDown: while the homeserver fails, the bot reports
// itself disconnected and retries with growing waits (not in a tight
// loop), then resumes and reports itself connected.
func TestSyncBacksOffWhileDown(t *testing.T) {
	const failures = 4
	var b *Bot
	var mu sync.Mutex
	var connectedWhileDown []bool
	f := &fakeHS{
		syncStatus: func(n int) (int, int) {
			if n < failures {
				return http.StatusBadGateway, 0
			}
			return 0, 0
		},
		onSync: func(n int) {
			if n > 0 && n <= failures {
				mu.Lock()
				connectedWhileDown = append(connectedWhileDown, b.Connected())
				mu.Unlock()
			}
		},
	}
	b, _ = newTestBot(t, f, 30, 400*time.Millisecond)
	runBot(t, b, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.syncs) > failures+1 && b.Connected()
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.syncs) <= failures+1 {
		t.Fatalf("%d syncs, want the bot to resume after %d failures", len(f.syncs), failures)
	}
	// Steps of 400ms (capped), waits of at least half of that.
	for i := 1; i <= failures; i++ {
		if gap := f.syncs[i].Sub(f.syncs[i-1]); gap < 200*time.Millisecond {
			t.Errorf("sync %d came %s after a failure, want a backoff of at least 200ms", i+1, gap)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, c := range connectedWhileDown {
		if c {
			t.Errorf("Connected() during failure %d = true", i+1)
		}
	}
	if len(connectedWhileDown) != failures {
		t.Errorf("observed %d failing syncs, want %d", len(connectedWhileDown), failures)
	}
}

// TestBackoff: the steps double from 500ms up to max, each wait is
// between half and all of its step, and reset starts again.
func TestBackoff(t *testing.T) {
	bo := backoff{max: 4 * time.Second}
	steps := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for round := 0; round < 2; round++ {
		for i, step := range steps {
			if d := bo.next(); d < step/2 || d > step {
				t.Errorf("round %d wait %d = %s, want in [%s, %s]", round, i, d, step/2, step)
			}
		}
		bo.reset()
	}
	small := backoff{max: 100 * time.Millisecond}
	for i := 0; i < 3; i++ {
		if d := small.next(); d > 100*time.Millisecond {
			t.Errorf("wait %d = %s, above max 100ms", i, d)
		}
	}
}

// TestProgressEdits: a job's first progress line is a notice replying to
// the caller's event; the next ones edit it (m.replace with m.new_content
// holding the lines so far, capped at max_lines with the link); another
// job gets its own message; the result is a new message mentioning the
// caller.
func TestProgressEdits(t *testing.T) {
	f := &fakeHS{}
	b, _ := newTestBot(t, f, 3, time.Second)
	out := &output{b: b, room: "!room:test", caller: "@alice:test", replyTo: "$cmd"}
	var o commands.Output = out
	p, ok := o.(commands.ProgressOutput)
	if !ok {
		t.Fatal("the Matrix output is not a commands.ProgressOutput")
	}
	p.SendProgress("5", commands.Info, "a")
	p.SendProgress("5", commands.Info, "b")
	p.SendProgress("5", commands.Error, "c")
	p.SendProgress("5", commands.Info, "d")
	p.SendProgress("6", commands.Info, "other")
	commands.SendResult(o, commands.Info, "job 5 done")

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sends) != 6 {
		t.Fatalf("%d events sent, want 6:\n%v", len(f.sends), f.sends)
	}
	first := f.sends[0]
	if first["msgtype"] != "m.notice" || first["body"] != "a" || replaces(first) != "" || inReplyTo(first) != "$cmd" {
		t.Errorf("first progress event: %v", first)
	}
	if m, _ := first["m.mentions"].(map[string]any); m == nil || len(m) != 0 {
		t.Errorf("first progress event mentions %v, want nobody", first["m.mentions"])
	}
	for i, want := range []string{"a\nb", "a\nb\nerror: c", "a\nb\n(2 more lines: http://web/long/1)"} {
		e := f.sends[i+1]
		nc, _ := e["m.new_content"].(map[string]any)
		if replaces(e) != "$e1" || nc == nil || nc["body"] != want || nc["msgtype"] != "m.notice" || e["body"] != "* "+want {
			t.Errorf("edit %d: %v, want an m.replace of $e1 with body %q", i+1, e, want)
		}
		if _, has := nc["m.relates_to"]; has {
			t.Errorf("edit %d: m.new_content has m.relates_to", i+1)
		}
	}
	if other := f.sends[4]; other["body"] != "other" || replaces(other) != "" {
		t.Errorf("another job's progress: %v, want its own message", other)
	}
	res := f.sends[5]
	m, _ := res["m.mentions"].(map[string]any)
	ids, _ := m["user_ids"].([]any)
	if res["body"] != "@alice:test: job 5 done" || replaces(res) != "" || inReplyTo(res) != "$cmd" || len(ids) != 1 || ids[0] != "@alice:test" {
		t.Errorf("result: %v, want a new reply mentioning the caller", res)
	}
}

func relatesTo(c map[string]any) map[string]any {
	r, _ := c["m.relates_to"].(map[string]any)
	return r
}

// replaces is the event c edits, or "".
func replaces(c map[string]any) id.EventID {
	r := relatesTo(c)
	if r["rel_type"] != "m.replace" {
		return ""
	}
	s, _ := r["event_id"].(string)
	return id.EventID(s)
}

// inReplyTo is the event c replies to, or "".
func inReplyTo(c map[string]any) id.EventID {
	irt, _ := relatesTo(c)["m.in_reply_to"].(map[string]any)
	s, _ := irt["event_id"].(string)
	return id.EventID(s)
}
