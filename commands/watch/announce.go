package watch

import (
	"github.com/fedora-infra/kojibot/commands/alerting"
	"github.com/fedora-infra/kojibot/commands/messaging"
	"github.com/fedora-infra/kojibot/commands/outage"
)

// busStates are the message bus's names of the notifications, with their
// severity.
var busStates = map[alerting.Notification]struct {
	state    string
	severity int
}{
	alerting.Firing:         {"alert", messaging.Warning},
	alerting.Repeat:         {"reminder", messaging.Warning},
	alerting.Resolved:       {"clear", messaging.Info},
	alerting.CheckFailed:    {"check-failed", messaging.Warning},
	alerting.CheckRecovered: {"check-recovered", messaging.Info},
}

// announce publishes notification p, whose text went out, on the bus.
func (w *Watcher) announce(p alerting.Pending, text string) {
	s, ok := busStates[p.Notification]
	if !ok {
		return
	}
	w.deps.Bus.Publish(messaging.Message{Topic: "watch." + s.state, Schema: messaging.SchemaAlert, Severity: s.severity,
		Body: messaging.Alert{State: s.state, Check: p.Check, Text: text}})
}

// announceDraft publishes the outage draft d on the bus.
func (w *Watcher) announceDraft(d outage.Draft) {
	subject, body, err := outage.Render(d)
	if err != nil {
		subject = d.Service
	}
	m := messaging.Outage{ID: d.ID, Agent: d.CreatedBy, Service: d.Service, Subject: subject, Body: body}
	if where, isURL := d.Where(w.set.publicURL, ""); isURL {
		m.URL = where
	}
	w.deps.Bus.Publish(messaging.Message{Topic: "outage.draft", Schema: messaging.SchemaOutage, Severity: messaging.Info,
		Users: []string{d.CreatedBy}, Body: m})
}
