package web

import "github.com/prometheus/client_golang/prometheus"

// MetricMessagesDropped counts the messages for the message bus dropped
// from the outbox: the oldest, past messaging.queue_limit, or one that
// could not be queued.
const MetricMessagesDropped = "kojibot_messaging_dropped_total"

// MessagingStatus is the publisher to the message bus, for /healthz.
type MessagingStatus interface {
	// Up reports whether the broker was reachable at the last try.
	Up() (bool, string)
}

// NewMessagingDropped registers MetricMessagesDropped with reg (none when
// reg is nil) and returns the function that counts n drops.
func NewMessagingDropped(reg prometheus.Registerer) func(n int) {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: MetricMessagesDropped,
		Help: "Messages for the message bus dropped from the outbox (messaging.queue_limit passed, or not queued).",
	})
	if reg != nil {
		reg.MustRegister(c)
	}
	return func(n int) { c.Add(float64(n)) }
}
