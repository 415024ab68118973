package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fedora-infra/kojibot/commands/messaging"
	"github.com/fedora-infra/kojibot/config"
)

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
