package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fedora-infra/kojibot/commands/messaging"
	"github.com/fedora-infra/kojibot/config"
)

// flushTimeout bounds how long exec waits for the broker before it exits.
const flushTimeout = 10 * time.Second

// flushMessages sends what exec queued for the message bus, for at most
// flushTimeout; what the broker did not take waits in the outbox for
// `kojibot run`.
func flushMessages(sys *system, stderr io.Writer) {
	if sys.publisher == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if err := sys.publisher.Flush(ctx); err != nil {
		fmt.Fprintf(stderr, "warning: %v; the messages wait in the state store for kojibot run\n", err)
	}
}

// runMessagingProbe connects to messaging.url with the client certificate
// and says whether the broker took it (check-config --probe). It returns
// 0 when it did or messaging is off, 1 otherwise.
func runMessagingProbe(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) int {
	if cfg.Messaging.URL == "" {
		fmt.Fprintln(stdout, "messaging: not configured (messaging.url is empty): nothing is published")
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := messaging.Probe(ctx, cfg.Messaging); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	fmt.Fprintf(stdout, "messaging: connected, logged in by certificate (EXTERNAL); publishing to %s as %s.kojibot.*\n",
		cfg.Messaging.Exchange, cfg.Messaging.TopicPrefix)
	return 0
}
