package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/fedora-infra/kojibot/bot"
	"github.com/fedora-infra/kojibot/bot/reply"
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
	// syncBody, when set, is the answer to a successful /sync (n from 0,
	// since the token asked from); the default has no events.
	syncBody func(n int, since string) string
	sinces   []string
	// join, when set, answers a join of target (a room id or alias): a
	// status (0 is success) and the room id joined.
	join func(target string) (status int, room string)
	// aliases resolves room aliases.
	aliases map[string]string
	joins   []string
	leaves  []string
	// onSend, when set, is called after each send is recorded.
	onSend func()
	// context, when set, serves /context: every event sent, as the bot's,
	// after the one asked about.
	context bool
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
		if f.onSend != nil {
			f.onSend()
		}
	case strings.Contains(r.URL.Path, "/join/"):
		_, target, _ := strings.Cut(r.URL.Path, "/join/")
		f.mu.Lock()
		f.joins = append(f.joins, target)
		join := f.join
		f.mu.Unlock()
		status, room := 0, "!room:test"
		if join != nil {
			status, room = join(target)
		}
		if status != 0 {
			w.WriteHeader(status)
			fmt.Fprint(w, `{"errcode":"M_FORBIDDEN","error":"You are not invited to this room."}`)
			return
		}
		fmt.Fprintf(w, `{"room_id":%q}`, room)
	case strings.Contains(r.URL.Path, "/directory/room/"):
		_, alias, _ := strings.Cut(r.URL.Path, "/directory/room/")
		f.mu.Lock()
		room, ok := f.aliases[alias]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errcode":"M_NOT_FOUND","error":"no such alias"}`)
			return
		}
		fmt.Fprintf(w, `{"room_id":%q,"servers":["test"]}`, room)
	case strings.Contains(r.URL.Path, "/context/") && f.context:
		f.mu.Lock()
		var after []map[string]any
		for i, c := range f.sends {
			after = append(after, map[string]any{"type": "m.room.message", "sender": "@kojibot:test",
				"event_id": fmt.Sprintf("$e%d", i+1), "room_id": "!room:test", "origin_server_ts": 1, "content": c})
		}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"events_after": after, "events_before": []any{}, "state": []any{}})
	case strings.HasSuffix(r.URL.Path, "/leave"):
		f.mu.Lock()
		f.leaves = append(f.leaves, r.URL.Path)
		f.mu.Unlock()
		fmt.Fprint(w, `{}`)
	case strings.HasSuffix(r.URL.Path, "/sync"):
		f.mu.Lock()
		n := len(f.syncs)
		f.syncs = append(f.syncs, time.Now())
		since := r.URL.Query().Get("since")
		f.sinces = append(f.sinces, since)
		body := f.syncBody
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
			if body != nil {
				fmt.Fprint(w, body(n, since))
				return
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
	kv := &memKV{m: map[string]string{}}
	return newTestBotWith(t, f, kv, nopHandler{}, maxLines, backoffMax, nil), kv
}

// newTestBotWith is newTestBot with a state store, a handler and a count
// of the long-output pages published (pages may be nil).
func newTestBotWith(t *testing.T, f *fakeHS, kv KV, h Handler, maxLines int, backoffMax time.Duration, pages *atomic.Int32) *Bot {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := config.Default().Matrix
	cfg.Homeserver, cfg.UserID, cfg.AccessToken = srv.URL, "@kojibot:test", "tok"
	cfg.Rooms, cfg.MaxLines = []string{"!room:test"}, maxLines
	b, err := New(Options{
		Config:  cfg,
		Handler: h, State: kv, BackoffMax: backoffMax,
		LongOutput: func(string) (string, bool) {
			if pages == nil {
				return "http://web/long/1", true
			}
			return fmt.Sprintf("http://web/long/%d", pages.Add(1)), true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
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
	runBot(t, b, func() bool { return storedSync(t, kv).NextBatch != "" })
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.syncs) < 2 {
		t.Fatalf("%d syncs, want a retry", len(f.syncs))
	}
	if gap := f.syncs[1].Sub(f.syncs[0]); gap < 1500*time.Millisecond || gap > 3*time.Second {
		t.Errorf("retried the sync %s after the 429, want retry_after_ms (1.5s)", gap)
	}
	if storedSync(t, kv).NextBatch == "" {
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
	var pages atomic.Int32
	b := newTestBotWith(t, f, &memKV{m: map[string]string{}}, nopHandler{}, 3, time.Second, &pages)
	out := &output{b: b, room: "!room:test", caller: "@alice:test", replyTo: "$cmd"}
	var o commands.Output = out
	p, ok := o.(commands.ProgressOutput)
	if !ok {
		t.Fatal("the Matrix output is not a commands.ProgressOutput")
	}
	p.SendProgress("5", reply.Text(commands.Info, "a"))
	p.SendProgress("5", reply.Text(commands.Info, "b"))
	p.SendProgress("5", reply.Text(commands.Error, "c"))
	p.SendProgress("5", reply.Text(commands.Info, "d"))
	p.SendProgress("6", reply.Text(commands.Info, "other"))
	commands.SendResult(o, reply.Text(commands.Info, "job 5 done"))

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sends) != 7 {
		t.Fatalf("%d events sent, want 7:\n%v", len(f.sends), f.sends)
	}
	first := f.sends[0]
	if first["msgtype"] != "m.notice" || first["body"] != "a" || replaces(first) != "" || inReplyTo(first) != "$cmd" {
		t.Errorf("first progress event: %v", first)
	}
	if m, _ := first["m.mentions"].(map[string]any); m == nil || len(m) != 0 {
		t.Errorf("first progress event mentions %v, want nobody", first["m.mentions"])
	}
	// Capped progress publishes no page; the result completes it with one.
	edits := []string{"a\nb", "a\nb\nerror: c", "a\nb\n(2 more lines so far; all of them when the job ends)", "a\nb\n(2 more lines: http://web/long/1)"}
	for i, want := range edits {
		e := f.sends[i+1]
		if i == 3 {
			e = f.sends[5] // after the other job's message
		}
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
	if n := pages.Load(); n != 1 {
		t.Errorf("%d long-output pages published, want 1 (at the result)", n)
	}
	res := f.sends[6]
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

// storedSync is the sync state kept in kv.
func storedSync(t *testing.T, kv *memKV) syncState {
	t.Helper()
	var st syncState
	v, ok, _ := kv.Get(context.Background(), keySync)
	if ok {
		if err := json.Unmarshal([]byte(v), &st); err != nil {
			t.Fatalf("stored sync state %q: %v", v, err)
		}
	}
	return st
}

// batch is a /sync answer whose timeline in !room:test holds one command
// from alice, sent at ts.
func batch(next, evt, text string, ts time.Time) string {
	return fmt.Sprintf(`{"next_batch":%q,"rooms":{"join":{"!room:test":{"timeline":{"events":[`+
		`{"type":"m.room.message","event_id":%q,"sender":"@alice:test","origin_server_ts":%d,`+
		`"content":{"msgtype":"m.text","body":%q}}]}}}}}`, next, evt, ts.UnixMilli(), "!koji "+text)
}

// recHandler records the commands it is given; each call runs during(req)
// first, when set.
type recHandler struct {
	mu     sync.Mutex
	reqs   []commands.Request
	during func(req commands.Request)
}

func (h *recHandler) Handle(_ context.Context, req commands.Request, out commands.Output) {
	h.mu.Lock()
	h.reqs = append(h.reqs, req)
	h.mu.Unlock()
	if h.during != nil {
		h.during(req)
	}
	out.Send(reply.Text(commands.Info, "done: "+req.Text))
}

func (h *recHandler) calls() []commands.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]commands.Request(nil), h.reqs...)
}

// sent returns the bodies of the events sent replying to evt.
func (f *fakeHS) sent(evt id.EventID) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.sends {
		if inReplyTo(c) == evt {
			b, _ := c["body"].(string)
			out = append(out, b)
		}
	}
	return out
}

// TestCrashWhileRunningNotReplayed: the sync token and the command taken
// from its batch are stored before the command starts. A bot that dies
// while the command runs (its store as it was then) starts again from
// the batch's token: it does not run the command a second time, tells the
// caller it was interrupted, and then forgets it.
func TestCrashWhileRunningNotReplayed(t *testing.T) {
	f := &fakeHS{syncBody: func(n int, since string) string {
		if since == "" {
			return batch("s1", "$cmd1", "capacity ppc3 2", time.Now())
		}
		return fmt.Sprintf(`{"next_batch":"s%d"}`, n+1)
	}}
	kv1 := &memKV{m: map[string]string{}}
	crashed := &memKV{m: map[string]string{}}
	var snapshot sync.Once
	h1 := &recHandler{during: func(commands.Request) {
		// The process dies here: what the store holds is all that is left.
		snapshot.Do(func() {
			kv1.mu.Lock()
			defer kv1.mu.Unlock()
			for k, v := range kv1.m {
				crashed.m[k] = v
			}
		})
	}}
	b1 := newTestBotWith(t, f, kv1, h1, 30, time.Second, nil)
	runBot(t, b1, func() bool { return len(h1.calls()) > 0 })
	if n := len(h1.calls()); n != 1 {
		t.Fatalf("the first bot ran the command %d times, want 1", n)
	}
	st := storedSync(t, crashed)
	if st.NextBatch != "s1" || len(st.Taken) != 1 || st.Taken[0].Event != "$cmd1" || st.Taken[0].Text != "capacity ppc3 2" {
		t.Fatalf("stored while the command ran: %+v, want token s1 and $cmd1 taken", st)
	}
	if after := storedSync(t, kv1); len(after.Taken) != 0 {
		t.Errorf("after the command finished, still taken: %+v", after.Taken)
	}

	h2 := &recHandler{}
	b2 := newTestBotWith(t, f, crashed, h2, 30, time.Second, nil)
	runBot(t, b2, func() bool { return len(f.sent("$cmd1")) >= 2 && len(storedSync(t, crashed).Taken) == 0 })
	if n := len(h2.calls()); n != 0 {
		t.Errorf("after the crash the command ran again (%d times)", n)
	}
	replies := f.sent("$cmd1")
	if len(replies) != 2 || !strings.Contains(replies[1], "interrupted") || !strings.Contains(replies[1], `"capacity ppc3 2"`) ||
		!strings.HasPrefix(replies[1], "@alice:test: error: ") {
		t.Errorf("replies to the command: %q, want its result, then one saying it was interrupted", replies)
	}
	f.mu.Lock()
	sinces := append([]string(nil), f.sinces...)
	f.mu.Unlock()
	if i := len(f.syncs) - 1; i < 1 {
		t.Fatal("the second bot did not sync")
	}
	for _, s := range sinces[1:] {
		if s == "" {
			t.Errorf("a sync after the first asked from the start (since %q): %q", s, sinces)
		}
	}
	if st := storedSync(t, crashed); len(st.Taken) != 0 {
		t.Errorf("still taken after the caller was told: %+v", st.Taken)
	}
}

// TestCrashAfterAnswerNotToldInterrupted: a bot that dies after a
// command's last reply went out and before the store recorded the command
// finished leaves it listed as taken. The next bot finds that reply
// (marked final) in the room: it neither runs the command again nor tells
// the caller it was interrupted, which would be a second answer.
func TestCrashAfterAnswerNotToldInterrupted(t *testing.T) {
	f := &fakeHS{context: true, syncBody: func(n int, since string) string {
		if since == "" {
			return batch("s1", "$cmd1", "capacity ppc3 2", time.Now())
		}
		return fmt.Sprintf(`{"next_batch":"s%d"}`, n+1)
	}}
	kv1 := &memKV{m: map[string]string{}}
	crashed := &memKV{m: map[string]string{}}
	var snapshot sync.Once
	f.onSend = func() {
		// The process dies as its reply is sent: the store is as it was.
		snapshot.Do(func() {
			kv1.mu.Lock()
			defer kv1.mu.Unlock()
			for k, v := range kv1.m {
				crashed.m[k] = v
			}
		})
	}
	h1 := &recHandler{}
	b1 := newTestBotWith(t, f, kv1, h1, 30, time.Second, nil)
	runBot(t, b1, func() bool { return len(f.sent("$cmd1")) > 0 && len(storedSync(t, kv1).Taken) == 0 })
	if st := storedSync(t, crashed); len(st.Taken) != 1 || st.Taken[0].Event != "$cmd1" {
		t.Fatalf("stored as the reply went out: %+v, want $cmd1 still taken", st)
	}
	f.mu.Lock()
	final, _ := f.sends[0][finalKey].(bool)
	f.mu.Unlock()
	if !final {
		t.Errorf("the command's only reply is not marked %s: %v", finalKey, f.sends[0])
	}

	h2 := &recHandler{}
	b2 := newTestBotWith(t, f, crashed, h2, 30, time.Second, nil)
	runBot(t, b2, func() bool { return len(storedSync(t, crashed).Taken) == 0 })
	if n := len(h2.calls()); n != 0 {
		t.Errorf("after the crash the command ran again (%d times)", n)
	}
	if replies := f.sent("$cmd1"); len(replies) != 1 {
		t.Errorf("replies to the command: %q, want its result only", replies)
	}
}

// TestCrashBeforeSaveRunsOnce: a batch whose token was not stored (the bot
// died between the /sync and the write) comes again from the older token,
// written by an earlier version as the bare token; its command then runs,
// once, and is no longer taken when it finishes.
func TestCrashBeforeSaveRunsOnce(t *testing.T) {
	sent := time.Now()
	f := &fakeHS{syncBody: func(n int, since string) string {
		if since == "s7" {
			return batch("s8", "$cmd2", "hosts", sent)
		}
		return fmt.Sprintf(`{"next_batch":"s%d"}`, n+10)
	}}
	kv := &memKV{m: map[string]string{keyNextBatch: "s7"}}
	h := &recHandler{}
	b := newTestBotWith(t, f, kv, h, 30, time.Second, nil)
	runBot(t, b, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.syncs) >= 3
	})
	if calls := h.calls(); len(calls) != 1 || calls[0].Text != "hosts" || calls[0].Account != "@alice:test" || calls[0].Place != "matrix:!room:test" {
		t.Fatalf("commands run: %+v, want hosts once from alice in !room:test", calls)
	}
	if st := storedSync(t, kv); st.NextBatch == "" || st.NextBatch == "s7" || len(st.Taken) != 0 {
		t.Errorf("stored: %+v, want a later token and nothing taken", st)
	}
	if got := f.sent("$cmd2"); len(got) != 1 || got[0] != "@alice:test: done: hosts" {
		t.Errorf("replies: %q", got)
	}
}

// TestStaleCommandAnswered: a command sent long before the bot started
// (while it was away) is not run, and its caller is told.
func TestStaleCommandAnswered(t *testing.T) {
	f := &fakeHS{syncBody: func(n int, since string) string {
		if since == "s1" {
			return batch("s2", "$old", "restart all", time.Now().Add(-10*time.Minute))
		}
		return fmt.Sprintf(`{"next_batch":"s%d"}`, n+10)
	}}
	kv := &memKV{m: map[string]string{keySync: `{"next_batch":"s1"}`}}
	h := &recHandler{}
	b := newTestBotWith(t, f, kv, h, 30, time.Second, nil)
	runBot(t, b, func() bool { return len(f.sent("$old")) > 0 })
	if n := len(h.calls()); n != 0 {
		t.Errorf("a command sent 10 minutes before the start ran")
	}
	if got := f.sent("$old"); len(got) != 1 || !strings.Contains(got[0], "not run: sent 10m") {
		t.Errorf("replies: %q, want one saying it was not run", got)
	}
}

// TestStaleCommandsAnsweredOnce: after a long outage, the old commands of
// a room are answered by one message, not one each: a table of who asked
// what, mentioning each caller once; none of them runs.
func TestStaleCommandsAnsweredOnce(t *testing.T) {
	old := time.Now().Add(-30 * time.Minute)
	var evs []string
	for i, who := range []string{"@alice:test", "@bob:test", "@alice:test"} {
		evs = append(evs, fmt.Sprintf(`{"type":"m.room.message","event_id":"$old%d","sender":%q,"origin_server_ts":%d,`+
			`"content":{"msgtype":"m.text","body":"!koji restart all"}}`, i, who, old.Add(time.Duration(i)*time.Minute).UnixMilli()))
	}
	f := &fakeHS{syncBody: func(n int, since string) string {
		if since == "s1" {
			return `{"next_batch":"s2","rooms":{"join":{"!room:test":{"timeline":{"events":[` + strings.Join(evs, ",") + `]}}}}}`
		}
		return fmt.Sprintf(`{"next_batch":"s%d"}`, n+10)
	}}
	kv := &memKV{m: map[string]string{keySync: `{"next_batch":"s1"}`}}
	h := &recHandler{}
	b := newTestBotWith(t, f, kv, h, 30, time.Second, nil)
	runBot(t, b, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.sends) > 0
	})
	time.Sleep(200 * time.Millisecond) // a second message, if any, has time to go out
	if n := len(h.calls()); n != 0 {
		t.Errorf("%d commands sent half an hour before the start ran", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sends) != 1 {
		t.Fatalf("%d messages, want one for the three commands: %v", len(f.sends), f.sends)
	}
	body, _ := f.sends[0]["body"].(string)
	if !strings.HasPrefix(body, "error: not run: 3 commands reached kojibot more than 2m0s (matrix.max_delay) after they were sent") ||
		strings.Count(body, "@alice:test  restart all") != 2 || strings.Count(body, "@bob:test") != 1 {
		t.Errorf("body %q", body)
	}
	if html, _ := f.sends[0]["formatted_body"].(string); !strings.Contains(html, "<td>@bob:test</td><td>restart all</td>") {
		t.Errorf("formatted_body %q lacks the table", html)
	}
	m, _ := f.sends[0]["m.mentions"].(map[string]any)
	if ids, _ := m["user_ids"].([]any); fmt.Sprint(ids) != "[@alice:test @bob:test]" {
		t.Errorf("mentions %v, want alice and bob once each", f.sends[0]["m.mentions"])
	}
}

// failingKV is a store whose writes fail once failPut is set.
type failingKV struct {
	memKV
	failPut atomic.Bool
}

func (k *failingKV) Put(ctx context.Context, key, value string) error {
	if k.failPut.Load() {
		return errors.New("disk full")
	}
	return k.memKV.Put(ctx, key, value)
}

// TestUnsavedBatchRefused: when the sync state cannot be stored, the
// batch's commands are refused (a restart could run them twice), with a
// reply saying so.
func TestUnsavedBatchRefused(t *testing.T) {
	f := &fakeHS{syncBody: func(n int, since string) string {
		if since == "s1" {
			return batch("s2", "$cmd3", "capacity ppc3 2", time.Now())
		}
		return fmt.Sprintf(`{"next_batch":"s%d"}`, n+10)
	}}
	kv := &failingKV{memKV: memKV{m: map[string]string{keySync: `{"next_batch":"s1"}`}}}
	kv.failPut.Store(true)
	h := &recHandler{}
	b := newTestBotWith(t, f, kv, h, 30, time.Second, nil)
	runBot(t, b, func() bool { return len(f.sent("$cmd3")) > 0 })
	if n := len(h.calls()); n != 0 {
		t.Errorf("the command ran without its batch stored")
	}
	if got := f.sent("$cmd3"); len(got) != 1 || !strings.Contains(got[0], "error: ") || !strings.Contains(got[0], "not run") {
		t.Errorf("replies: %q, want an error saying it was not run", got)
	}
}

// TestInviteToConfiguredRoomAccepted: a configured room the bot cannot join
// by itself (invite-only) is joined when the bot is invited to it; an
// invite to another room is declined.
func TestInviteToConfiguredRoomAccepted(t *testing.T) {
	var mu sync.Mutex
	invited := false
	f := &fakeHS{
		aliases: map[string]string{"#priv:test": "!priv:test"},
		join: func(target string) (int, string) {
			mu.Lock()
			defer mu.Unlock()
			if target == "!priv:test" || (target == "#priv:test" && invited) {
				return 0, "!priv:test"
			}
			return http.StatusForbidden, ""
		},
		syncBody: func(n int, since string) string {
			if n == 1 {
				mu.Lock()
				invited = true
				mu.Unlock()
				return `{"next_batch":"s2","rooms":{"invite":{"!priv:test":{"invite_state":{"events":[]}},"!other:test":{"invite_state":{"events":[]}}}}}`
			}
			return fmt.Sprintf(`{"next_batch":"s%d"}`, n+1)
		},
	}
	b := newTestBotWith(t, f, &memKV{m: map[string]string{}}, nopHandler{}, 30, 20*time.Millisecond, nil)
	b.opts.Config.Rooms = []string{"#priv:test"}
	runBot(t, b, func() bool {
		f.mu.Lock()
		left := len(f.leaves) > 0
		f.mu.Unlock()
		return b.configured("!priv:test") && left
	})
	if !b.configured("!priv:test") {
		t.Fatal("the bot did not join the configured room it was invited to")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.joins) < 2 || f.joins[0] != "#priv:test" {
		t.Errorf("joins %q, want #priv:test tried first", f.joins)
	}
	if len(f.leaves) != 1 || !strings.Contains(f.leaves[0], "!other:test") {
		t.Errorf("left %q, want only !other:test", f.leaves)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) != 0 || b.notifyRoom != "!priv:test" {
		t.Errorf("pending %q, notify room %q; want none pending and !priv:test", b.pending, b.notifyRoom)
	}
}

// TestInboundLimits: each sender linked to a FAS user (a user of
// matrix.fas_server, or one Identify links, such as an acl.accounts entry
// on another server) has a bucket of its own; guests and unlinked users
// of other servers (anyone can make accounts there) share one. A command
// over the limit is not run and not left taken, and its caller is told
// once.
func TestInboundLimits(t *testing.T) {
	now := time.Now()
	evts := []struct{ id, sender string }{
		{"$a1", "@alice:test"}, {"$a2", "@alice:test"}, {"$a3", "@alice:test"}, {"$a4", "@alice:test"},
		{"$m1", "@mallory:evil"}, {"$m2", "@mallory:evil"}, {"$e1", "@eve:evil2"}, {"$e2", "@eve:evil2"},
		{"$g1", "@12345:test"}, {"$o1", "@ops:elsewhere"}, {"$o2", "@ops:elsewhere"}, {"$b1", "@bob:test"},
	}
	var timeline []string
	for _, e := range evts {
		timeline = append(timeline, fmt.Sprintf(`{"type":"m.room.message","event_id":%q,"sender":%q,"origin_server_ts":%d,"content":{"msgtype":"m.text","body":"!koji hosts"}}`,
			e.id, e.sender, now.UnixMilli()))
	}
	f := &fakeHS{syncBody: func(n int, since string) string {
		if since == "s1" {
			return `{"next_batch":"s2","rooms":{"join":{"!room:test":{"timeline":{"events":[` + strings.Join(timeline, ",") + `]}}}}}`
		}
		return fmt.Sprintf(`{"next_batch":"s%d"}`, n+10)
	}}
	kv := &memKV{m: map[string]string{keyNextBatch: "s1"}}
	h := &recHandler{}
	b := newTestBotWith(t, f, kv, h, 30, time.Second, nil)
	b.opts.Config.FASServer = "test"
	b.opts.Limits = bot.NewUserLimits(0.001, 2)
	b.opts.Identify = func(_ context.Context, sender string) bool {
		return sender == "@ops:elsewhere" || sender == "@alice:test" || sender == "@bob:test"
	}
	runBot(t, b, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.syncs) >= 3 && len(storedSync(t, kv).Taken) == 0
	})
	ran := map[string]int{}
	for _, c := range h.calls() {
		ran[c.Account]++
	}
	if ran["@alice:test"] != 2 || ran["@ops:elsewhere"] != 2 || ran["@bob:test"] != 1 {
		t.Errorf("commands run per caller: %v; want 2 of alice's, both of the linked @ops:elsewhere's and bob's", ran)
	}
	if anon := ran["@mallory:evil"] + ran["@eve:evil2"] + ran["@12345:test"]; anon != 2 {
		t.Errorf("%d commands of unlinked callers ran, want 2 (one shared bucket): %v", anon, ran)
	}
	if got := f.sent("$a3"); len(got) != 1 || !strings.Contains(got[0], "slow down, please: too many commands;") {
		t.Errorf("reply to $a3: %q, want one saying slow down", got)
	}
	if got := f.sent("$a4"); len(got) != 0 {
		t.Errorf("reply to $a4: %q, want none (told once already)", got)
	}
	told := 0
	for _, evt := range []id.EventID{"$m1", "$m2", "$e1", "$e2", "$g1"} {
		for _, r := range f.sent(evt) {
			if strings.Contains(r, "not identified to FAS") {
				told++
			}
		}
	}
	if told != 1 {
		t.Errorf("unlinked callers told %d times that they are too many, want once", told)
	}
	for _, evt := range []id.EventID{"$o1", "$o2"} {
		if got := f.sent(evt); len(got) != 1 || strings.Contains(got[0], "slow down") {
			t.Errorf("reply to the linked sender's %s: %q, want its answer", evt, got)
		}
	}
	if st := storedSync(t, kv); len(st.Taken) != 0 {
		t.Errorf("stored: %+v, want nothing left taken", st)
	}
}

// TestSyncNotBlockedByBusyCaller: a caller whose commands are all stuck
// does not hold up the sync loop or the other callers: their commands
// wait in their own queue and run one at a time, and another caller's
// command, in a later batch, runs at once.
func TestSyncNotBlockedByBusyCaller(t *testing.T) {
	now := time.Now()
	var stuck []string
	for i := range 12 {
		stuck = append(stuck, fmt.Sprintf(`{"type":"m.room.message","event_id":"$s%d","sender":"@alice:test","origin_server_ts":%d,"content":{"msgtype":"m.text","body":"!koji capacity ppc3 %d"}}`,
			i, now.UnixMilli(), i))
	}
	f := &fakeHS{syncBody: func(n int, since string) string {
		switch since {
		case "s1":
			return `{"next_batch":"s2","rooms":{"join":{"!room:test":{"timeline":{"events":[` + strings.Join(stuck, ",") + `]}}}}}`
		case "s2":
			return strings.Replace(batch("s3", "$bob", "hosts", time.Now()), "@alice:test", "@bob:test", 1)
		}
		return fmt.Sprintf(`{"next_batch":"s%d"}`, n+10)
	}}
	release := make(chan struct{})
	var inFlight, most atomic.Int32
	h := &recHandler{during: func(req commands.Request) {
		if req.Account == "@alice:test" {
			n := inFlight.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-release
			inFlight.Add(-1)
		}
	}}
	kv := &memKV{m: map[string]string{keyNextBatch: "s1"}}
	b := newTestBotWith(t, f, kv, h, 30, time.Second, nil)
	var released sync.Once
	whileStuck := false
	start := time.Now()
	runBot(t, b, func() bool {
		answered := len(f.sent("$bob")) > 0
		if !answered && time.Since(start) < 5*time.Second {
			return false
		}
		released.Do(func() { whileStuck = answered; close(release) })
		return len(h.calls()) == 13
	})
	if got := f.sent("$bob"); !whileStuck || len(got) != 1 || got[0] != "@bob:test: done: hosts" {
		t.Fatalf("bob's command was not answered while alice's were stuck (replies %q)", got)
	}
	if m := most.Load(); m != 1 {
		t.Errorf("%d of alice's commands ran at once, want one at a time", m)
	}
	var order []string
	for _, c := range h.calls() {
		if c.Account == "@alice:test" {
			order = append(order, c.Text)
		}
	}
	for i, text := range order {
		if want := fmt.Sprintf("capacity ppc3 %d", i); text != want {
			t.Fatalf("alice's commands ran in the order %q, want the order sent", order)
		}
	}
}

// TestJoinFailedRoomServed: a configured room whose join was answered
// with an error (a 502, though the join went through) is served when the
// sync shows the bot in it: its commands run and it is never left. Only a
// room matching no configured entry is left.
func TestJoinFailedRoomServed(t *testing.T) {
	now := time.Now()
	f := &fakeHS{
		aliases: map[string]string{"#admin:test": "!room:test"},
		join:    func(string) (int, string) { return http.StatusBadGateway, "" },
		syncBody: func(n int, since string) string {
			if since == "s1" {
				return fmt.Sprintf(`{"next_batch":"s2","rooms":{"join":{`+
					`"!room:test":{"timeline":{"events":[{"type":"m.room.message","event_id":"$c1","sender":"@alice:test","origin_server_ts":%d,"content":{"msgtype":"m.text","body":"!koji hosts"}}]}},`+
					`"!other:test":{"timeline":{"events":[]}}}}}`, now.UnixMilli())
			}
			return fmt.Sprintf(`{"next_batch":"s%d"}`, n+10)
		},
	}
	kv := &memKV{m: map[string]string{keyNextBatch: "s1"}}
	h := &recHandler{}
	b := newTestBotWith(t, f, kv, h, 30, 20*time.Millisecond, nil)
	b.opts.Config.Rooms = []string{"#admin:test"}
	runBot(t, b, func() bool { return len(f.sent("$c1")) > 0 })
	if calls := h.calls(); len(calls) != 1 || calls[0].Place != "matrix:!room:test" {
		t.Errorf("commands run: %+v, want hosts from !room:test", calls)
	}
	f.mu.Lock()
	leaves := append([]string(nil), f.leaves...)
	f.mu.Unlock()
	if len(leaves) != 1 || !strings.Contains(leaves[0], "!other:test") {
		t.Errorf("left %q, want only !other:test", leaves)
	}
	if !b.configured("!room:test") || b.configured("!other:test") {
		t.Errorf("served: !room:test %v, !other:test %v; want only the configured one", b.configured("!room:test"), b.configured("!other:test"))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) != 0 || b.notifyRoom != "!room:test" {
		t.Errorf("pending %q, notify room %q; want none pending and !room:test", b.pending, b.notifyRoom)
	}
}

// TestDelayedCommandNotRun: a command that reaches a running bot more than
// matrix.max_delay after it was sent (held up on its way) is answered "not
// run", with the delay, whenever the bot started.
func TestDelayedCommandNotRun(t *testing.T) {
	var sent atomic.Int64
	f := &fakeHS{syncBody: func(n int, since string) string {
		if n == 3 {
			return batch(fmt.Sprintf("s%d", n+1), "$late", "restart all", time.UnixMilli(sent.Load()))
		}
		return fmt.Sprintf(`{"next_batch":"s%d"}`, n+1)
	}}
	kv := &memKV{m: map[string]string{keySync: `{"next_batch":"s0"}`}}
	h := &recHandler{}
	b := newTestBotWith(t, f, kv, h, 30, time.Second, nil)
	b.opts.Config.MaxDelay = time.Second
	// Sent a little after the start, received 3s after it was sent.
	sent.Store(time.Now().Add(-3 * time.Second).UnixMilli())
	runBot(t, b, func() bool { return len(f.sent("$late")) > 0 })
	if n := len(h.calls()); n != 0 {
		t.Errorf("a command that arrived 3s late (max_delay 1s) ran")
	}
	if got := f.sent("$late"); len(got) != 1 || !strings.Contains(got[0], "error: not run: sent 3s before it reached kojibot (matrix.max_delay is 1s)") {
		t.Errorf("replies: %q, want one saying it was not run, with the delay", got)
	}
}

// TestPlaceName: a command names its room by the room's canonical alias,
// else by the alias it was configured by, beside the room id.
func TestPlaceName(t *testing.T) {
	now := time.Now()
	f := &fakeHS{
		aliases: map[string]string{"#admin:test": "!room:test"},
		join: func(target string) (int, string) {
			if target == "#admin:test" {
				return 0, "!room:test"
			}
			return 0, "!ops:test"
		},
		syncBody: func(n int, since string) string {
			if since == "s1" {
				ev := func(id string) string {
					return fmt.Sprintf(`{"type":"m.room.message","event_id":%q,"sender":"@alice:test","origin_server_ts":%d,"content":{"msgtype":"m.text","body":"!koji hosts"}}`, id, now.UnixMilli())
				}
				return `{"next_batch":"s2","rooms":{"join":{` +
					`"!room:test":{"timeline":{"events":[` + ev("$r") + `]}},` +
					`"!ops:test":{"state":{"events":[{"type":"m.room.canonical_alias","state_key":"","event_id":"$a","sender":"@x:test","origin_server_ts":1,"content":{"alias":"#ops:test"}},` +
					`{"type":"m.room.name","state_key":"","event_id":"$n","sender":"@x:test","origin_server_ts":1,"content":{"name":"Ops"}}]},"timeline":{"events":[` + ev("$o") + `]}}}}}`
			}
			return fmt.Sprintf(`{"next_batch":"s%d"}`, n+10)
		},
	}
	kv := &memKV{m: map[string]string{keyNextBatch: "s1"}}
	h := &recHandler{}
	b := newTestBotWith(t, f, kv, h, 30, time.Second, nil)
	b.opts.Config.Rooms = []string{"#admin:test", "!ops:test"}
	runBot(t, b, func() bool { return len(h.calls()) == 2 })
	got := map[string]string{}
	for _, c := range h.calls() {
		got[c.Place] = c.PlaceName
	}
	if want := map[string]string{"matrix:!room:test": "#admin:test", "matrix:!ops:test": "#ops:test"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("places %v, want %v", got, want)
	}
}
