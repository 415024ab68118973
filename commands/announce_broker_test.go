package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fedora-infra/kojibot/commands/messaging"
	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness/rabbitmq"
)

// TestCleanupWhileBrokerDown: with the broker stopped, a clean-up runs to
// its end as ever; its message waits in the state store and arrives once
// the broker is back, exactly once, read by python3-pika.
func TestCleanupWhileBrokerDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real RabbitMQ")
	}
	ctx, cancel := context.WithTimeout(context.Background(), rabbitmq.Budget)
	defer cancel()
	broker, err := rabbitmq.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	bot, err := broker.AddUser(ctx, "kojibot")
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := broker.AddUser(ctx, "consumer")
	if err != nil {
		t.Fatal(err)
	}
	cfgFor := func(c rabbitmq.Client) config.Messaging {
		return config.Messaging{URL: broker.URL(), TopicPrefix: "org.example", Exchange: "amq.topic",
			CAFile: broker.CAFile(), CertFile: c.CertFile, KeyFile: c.KeyFile, QueueLimit: 100}
	}
	// The consumer's durable queue, as fedora-messaging's would be.
	conn, err := messaging.Dial(ctx, cfgFor(consumer))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err == nil {
		_, err = ch.QueueDeclare("kojibot", true, false, false, false, amqp.Table{"x-queue-type": "classic"})
	}
	if err == nil {
		err = ch.QueueBind("kojibot", "org.example.kojibot.#", "amq.topic", false, nil)
	}
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}

	store, err := state.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pub := messaging.New(cfgFor(bot), store, nil)
	pub.Retry = 200 * time.Millisecond
	pctx, pcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { pub.Run(pctx); close(done) }()
	defer func() { pcancel(); <-done }()

	b := &fakeBuilder{names: []string{"f40-build-1-1", "f40-build-2-1"}}
	d, _ := cleanupDispatcher(t, b)
	d.deps.Bus = pub

	if err := broker.Stop(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	out, _ := runConfirmed(d, "cleanup ppc3")
	if !strings.Contains(out, "removed 2 entries") || !strings.Contains(out, "done in") {
		t.Fatalf("the clean-up did not finish with the broker down:\n%s", out)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the clean-up took %s with the broker down", took)
	}
	if q, _ := store.Outbox(ctx, 10); len(q) != 1 {
		t.Fatalf("%d messages in the outbox, want the clean-up's", len(q))
	}
	if err := broker.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(broker.Addr(), ":")
	// Two asked for: only one may come.
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "messaging/testdata/consume.py", host, port, broker.CAFile(),
		consumer.CertFile, consumer.KeyFile, "kojibot", "2", "8")
	got, err := cmd.Output()
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if err == nil || len(lines) != 1 || lines[0] == "" {
		t.Fatalf("after the restart: %q (%v), want exactly one message", got, err)
	}
	var r struct {
		RoutingKey string            `json:"routing_key"`
		Body       messaging.Command `json:"body"`
		Problems   []string          `json:"problems"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatal(err)
	}
	if r.RoutingKey != "org.example.kojibot.cleanup" || len(r.Problems) > 0 || r.Body.Job == "" || r.Body.Outcome != "ok" ||
		!strings.Contains(fmt.Sprint(r.Body.Lines), "removed 2 entries, freed ") {
		t.Fatalf("message %+v", r)
	}
}
