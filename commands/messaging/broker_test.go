package messaging_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fedora-infra/kojibot/commands/messaging"
	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness/rabbitmq"
)

// broker is the package's RabbitMQ; bot and consumer its two users.
var (
	broker        *rabbitmq.Broker
	bot, consumer rabbitmq.Client
)

func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() {
		fmt.Println("skipped with -short: these tests start a real RabbitMQ")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), rabbitmq.Budget)
	defer cancel()
	dir, err := os.MkdirTemp("", "rabbitmq-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if broker, err = rabbitmq.Start(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer broker.Close()
	if bot, err = broker.AddUser(ctx, "kojibot"); err == nil {
		consumer, err = broker.AddUser(ctx, "consumer")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// cfgFor is the messaging section of client c on the package's broker.
func cfgFor(c rabbitmq.Client, prefix string) config.Messaging {
	return config.Messaging{URL: broker.URL(), TopicPrefix: prefix, Exchange: "amq.topic",
		CAFile: broker.CAFile(), CertFile: c.CertFile, KeyFile: c.KeyFile, QueueLimit: 100}
}

// queueFor declares a durable queue taking every message under prefix,
// as a fedora-messaging consumer's would be.
func queueFor(t *testing.T, prefix string) string {
	t.Helper()
	conn, err := messaging.Dial(t.Context(), cfgFor(consumer, prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q := "q-" + prefix
	if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q, prefix+".kojibot.#", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	return q
}

// received is one message as consume.py saw it.
type received struct {
	RoutingKey string          `json:"routing_key"`
	MessageID  string          `json:"message_id"`
	Headers    map[string]any  `json:"headers"`
	Body       json.RawMessage `json:"body"`
	Problems   []string        `json:"problems"`
}

// consume takes want messages from queue with Debian's python3-pika
// (testdata/consume.py), waiting up to wait; it returns what came, and
// the script's error when fewer came.
func consume(t *testing.T, queue string, want int, wait time.Duration) ([]received, error) {
	t.Helper()
	host, port, _ := strings.Cut(broker.Addr(), ":")
	cmd := exec.CommandContext(t.Context(), "/usr/bin/python3", "testdata/consume.py", host, port, broker.CAFile(),
		consumer.CertFile, consumer.KeyFile, queue, fmt.Sprint(want), fmt.Sprint(wait.Seconds()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var got []received
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r received
		if jerr := json.Unmarshal(sc.Bytes(), &r); jerr != nil {
			t.Fatalf("consume.py printed %q: %v", sc.Text(), jerr)
		}
		got = append(got, r)
	}
	if err != nil {
		err = fmt.Errorf("%v: %s", err, stderr.String())
	}
	return got, err
}

// schemas are docs/messages/*.json, compiled.
var schemas = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	out := map[string]*jsonschema.Schema{}
	for _, name := range []string{messaging.SchemaCommand, messaging.SchemaAlert, messaging.SchemaOutage} {
		path, err := filepath.Abs(filepath.Join("..", "..", "docs", "messages", name+".json"))
		if err != nil {
			return nil, err
		}
		s, err := c.Compile(path)
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
})

// checkWire fails unless r passed consume.py's checks and its body is
// valid for the schema its header names.
func checkWire(t *testing.T, r received) {
	t.Helper()
	if len(r.Problems) > 0 {
		t.Errorf("%s: %v", r.RoutingKey, r.Problems)
	}
	all, err := schemas()
	if err != nil {
		t.Fatal(err)
	}
	name, _ := r.Headers["fedora_messaging_schema"].(string)
	s, ok := all[name]
	if !ok {
		t.Fatalf("%s: schema %q is not in docs/messages", r.RoutingKey, name)
	}
	body, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(body); err != nil {
		t.Errorf("%s: body %s is not valid for %s: %v", r.RoutingKey, r.Body, name, err)
	}
}

// start runs p until the test ends.
func start(t *testing.T, p *messaging.Publisher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func commandMsg(host string) messaging.Message {
	return messaging.Message{Topic: "capacity", Schema: messaging.SchemaCommand, Severity: messaging.Info, Users: []string{"alice"},
		Body: messaging.Command{Agent: "alice", Account: "alice", Transport: "irc", Place: "#fedora-admin", Command: "capacity",
			Args: host + " 2", Host: host, Outcome: "ok", Lines: []string{host + " capacity 4 → 2 (load 1.5)"}}}
}

// TestWireFormat: what the publisher sends is what fedora-messaging's
// consumer reads: properties, headers, a body valid for its schema, the
// routing key under the prefix, the caller as a user header.
func TestWireFormat(t *testing.T) {
	q := queueFor(t, "wire")
	p := messaging.New(cfgFor(bot, "wire"), &messaging.MemoryOutbox{}, nil)
	start(t, p)
	p.Publish(commandMsg("ppc3"))
	p.Publish(messaging.Message{Topic: "watch.alert", Schema: messaging.SchemaAlert, Severity: messaging.Warning,
		Body: messaging.Alert{State: "alert", Check: "disk:xenbuilder2:/var/lib/mock", Text: "ALERT disk: xenbuilder2 /var/lib/mock 93% full"}})
	p.Publish(messaging.Message{Topic: "outage.draft", Schema: messaging.SchemaOutage, Severity: messaging.Info, Users: []string{"bob"},
		Body: messaging.Outage{ID: "o1", Agent: "bob", Service: "koji", Subject: "Outage: koji", Body: "..."}})
	got, err := consume(t, q, 3, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"wire.kojibot.capacity", "wire.kojibot.watch.alert", "wire.kojibot.outage.draft"}
	for i, r := range got {
		checkWire(t, r)
		if r.RoutingKey != keys[i] {
			t.Errorf("message %d routed %q, want %q", i, r.RoutingKey, keys[i])
		}
	}
	if got[0].Headers["fedora_messaging_user_alice"] != true || got[2].Headers["fedora_messaging_user_bob"] != true {
		t.Errorf("user headers missing: %v / %v", got[0].Headers, got[2].Headers)
	}
	if sev := got[1].Headers["fedora_messaging_severity"]; sev != float64(messaging.Warning) {
		t.Errorf("alert severity %v", sev)
	}
	if up, _ := p.Up(); !up {
		t.Error("Up() false while connected")
	}
}

// TestBrokerDown: with the broker stopped, Publish returns at once and
// the messages wait in the state store, in order, across a restart of
// the bot, the oldest dropped past the bound and counted; when the broker
// is back each arrives once.
func TestBrokerDown(t *testing.T) {
	q := queueFor(t, "down")
	dir := t.TempDir()
	store, err := state.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := cfgFor(bot, "down")
	cfg.QueueLimit = 3
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	p := messaging.New(cfg, store, log)
	p.Retry = 200 * time.Millisecond
	var dropped atomic.Int64
	p.Dropped = func(n int) { dropped.Add(int64(n)) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()

	if err := broker.Stop(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			broker.Restart(context.Background())
		}
	}()
	hosts := []string{"h1", "h2", "h3", "h4"}
	for _, h := range hosts {
		began := time.Now()
		p.Publish(commandMsg(h))
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("Publish took %s with the broker down", took)
		}
	}
	if dropped.Load() != 1 {
		t.Errorf("dropped %d, want 1 (4 messages, bound 3)", dropped.Load())
	}
	waitFor(t, "Up() false", func() bool { up, _ := p.Up(); return !up })
	if !strings.Contains(logs.String(), "the broker is unreachable; messages wait in the outbox") {
		t.Errorf("no clear log line while down:\n%s", logs.String())
	}
	// The bot restarts while the broker is away: the outbox stays.
	cancel()
	<-done
	store.Close()
	if store, err = state.Open(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	p = messaging.New(cfg, store, nil)
	p.Retry = 200 * time.Millisecond
	start(t, p)

	if err := broker.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	got, err := consume(t, q, 4, 8*time.Second) // one more than sent: none is repeated
	if err == nil || len(got) != 3 {
		t.Fatalf("after the restart got %d messages (%v), want exactly 3", len(got), err)
	}
	for i, r := range got {
		checkWire(t, r)
		var body messaging.Command
		json.Unmarshal(r.Body, &body)
		if body.Host != hosts[i+1] {
			t.Errorf("message %d is for %s, want %s (oldest dropped, order kept)", i, body.Host, hosts[i+1])
		}
	}
	if left, _ := store.Outbox(t.Context(), 10); len(left) != 0 {
		t.Errorf("%d messages left in the outbox", len(left))
	}
}

// TestBadCertificate: a certificate from another CA, or of a user the
// broker does not know, is refused with a line that says so.
func TestBadCertificate(t *testing.T) {
	foreign, err := broker.ForeignCertificate("kojibot")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := broker.Certificate("stranger")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		c    rabbitmq.Client
		says string
		asks int // RabbitMQ takes about 3 s to refuse a login
	}{
		{"another CA", foreign, "refused the bot's client certificate (messaging.cert_file)", 20},
		{"unknown user", stranger, "refused the login by certificate", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// amqp091's reader reads the broker's TLS alert and closes the
			// connection while the opening goes on, which then fails with
			// whatever it meets ("use of closed network connection",
			// "channel/connection is not open"): Dial keeps the alert
			// itself. Asked again and again, it must say the same every time.
			for i := 0; i < tt.asks; i++ {
				err := messaging.Probe(t.Context(), cfgFor(tt.c, "bad"))
				if err == nil || !strings.Contains(err.Error(), tt.says) {
					t.Fatalf("Probe #%d = %v, want it to say %q", i+1, err, tt.says)
				}
			}
			var logs syncBuffer
			p := messaging.New(cfgFor(tt.c, "bad"), &messaging.MemoryOutbox{}, slog.New(slog.NewTextHandler(&logs, nil)))
			p.Retry = time.Hour
			start(t, p)
			p.Publish(commandMsg("ppc3"))
			waitFor(t, "the refusal logged", func() bool { return strings.Contains(logs.String(), tt.says) })
			if up, why := p.Up(); up || !strings.Contains(why, tt.says) {
				t.Errorf("Up() = %v, %q", up, why)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
