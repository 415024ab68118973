// Package messaging announces what kojibot changes, its watcher's alerts
// and its outage drafts on Fedora's message bus, in fedora-messaging's
// wire format: a JSON body, content type application/json in utf-8,
// persistent, a version 4 UUID message id, and the headers fedora-messaging's
// consumers read (fedora_messaging_schema, fedora_messaging_severity,
// sent-at, priority, fedora_messaging_user_<name>).
//
// Publishing never blocks a command: Publish puts the message in a
// bounded outbox (the state store's, so a restart loses nothing) and a
// Publisher's Run sends the outbox in order, with publisher confirms,
// whenever the broker is reachable.
package messaging

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Severities, as fedora-messaging numbers them.
const (
	Debug   = 10
	Info    = 20
	Warning = 30
	Error   = 40
)

// Schemas of the bodies; docs/messages/<schema>.json describes each.
const (
	// SchemaCommand is the body of a command's result (Command).
	SchemaCommand = "kojibot.command.v1"
	// SchemaAlert is the body of a watcher alert, reminder or clear (Alert).
	SchemaAlert = "kojibot.alert.v1"
	// SchemaOutage is the body of an outage draft (Outage).
	SchemaOutage = "kojibot.outage.draft.v1"
)

// Message is one message for the bus.
type Message struct {
	// Topic is the routing key's end: "<topic_prefix>.kojibot." + Topic.
	Topic string
	// Schema names the body's schema (fedora_messaging_schema).
	Schema   string
	Severity int
	// Users are the FAS users the message concerns (the caller).
	Users []string
	Body  any
}

// Bus takes messages to publish. Publish never blocks on the broker and
// never fails the caller.
type Bus interface {
	Publish(m Message)
}

// Nop is the Bus of a bot with no messaging.url: it publishes nothing.
type Nop struct{}

// Publish implements Bus.
func (Nop) Publish(Message) {}

// Recorder is a Bus that keeps what is published, for tests of the
// packages that publish. It is safe for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	msgs []Message
}

// Publish implements Bus.
func (r *Recorder) Publish(m Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

// Take returns what was published since the last Take, and forgets it.
func (r *Recorder) Take() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.msgs
	r.msgs = nil
	return out
}

// Command is the body of a command that changed something.
type Command struct {
	// Agent is the caller's FAS user ("" when it has none: then Account).
	Agent     string `json:"agent"`
	Account   string `json:"account"`
	Transport string `json:"transport"`
	Place     string `json:"place"`
	Command   string `json:"command"`
	// Args are the command's words after its name, normalized.
	Args string `json:"args"`
	Host string `json:"host,omitempty"`
	// Job is the job's id for a command run as a job.
	Job string `json:"job,omitempty"`
	// Outcome is "ok", "error" or "cancelled".
	Outcome string `json:"outcome"`
	// Lines are what the bot answered (for a job, its log): before and
	// after values, bytes freed, the error.
	Lines []string `json:"lines"`
}

// Alert is the body of a watcher alert, its reminder and its clear.
type Alert struct {
	// State is "alert", "reminder" or "clear".
	State string `json:"state"`
	// Check names what is watched ("disk:<host>:<mount>", "stale:<host>"...).
	Check string `json:"check"`
	Text  string `json:"text"`
}

// Outage is the body of an outage announcement draft.
type Outage struct {
	ID      string `json:"id"`
	Agent   string `json:"agent"`
	Service string `json:"service"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
	URL     string `json:"url,omitempty"`
}

// SentAtLayout is the sent-at header's format: ISO 8601 with the zone's
// offset and no fraction of a second, as fedora-messaging's wire format
// asks ("2019-07-30T19:12:22+00:00").
const SentAtLayout = "2006-01-02T15:04:05-07:00"

// envelope is a message as the outbox keeps it: everything that goes on
// the wire, fixed when it was published (its id and sent-at too), so that
// a resend is the same message.
type envelope struct {
	ID         string          `json:"id"`
	RoutingKey string          `json:"routing_key"`
	Schema     string          `json:"schema"`
	Severity   int             `json:"severity"`
	Users      []string        `json:"users,omitempty"`
	SentAt     string          `json:"sent_at"`
	Body       json.RawMessage `json:"body"`
}

// encode makes m's envelope under prefix at now.
func encode(m Message, prefix string, now time.Time) (envelope, error) {
	body, err := json.Marshal(m.Body)
	if err != nil {
		return envelope{}, err
	}
	return envelope{ID: uuid.NewString(), RoutingKey: prefix + ".kojibot." + m.Topic, Schema: m.Schema,
		Severity: m.Severity, Users: m.Users, SentAt: now.UTC().Format(SentAtLayout), Body: body}, nil
}

// headers are the AMQP headers of e, as fedora-messaging writes them.
func (e envelope) headers() map[string]any {
	h := map[string]any{
		"fedora_messaging_schema":   e.Schema,
		"fedora_messaging_severity": int32(e.Severity),
		"sent-at":                   e.SentAt,
		"priority":                  int32(0),
	}
	for _, u := range e.Users {
		if u != "" {
			h["fedora_messaging_user_"+u] = true
		}
	}
	return h
}
