package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/config"
)

// runStateProbe connects to the PostgreSQL store of state.dsn, when set,
// and prints its schema version. It returns 0 when the store can be used
// (a missing or older schema is migrated at start, which needs CREATE on
// its schema), 1 otherwise.
func runStateProbe(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) int {
	if cfg.State.DSN == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := state.ProbePostgres(ctx, cfg.State.DSN.Reveal())
	if err != nil {
		fmt.Fprintln(stderr, "error: state.dsn:", err)
		return 1
	}
	fmt.Fprintf(stdout, "state store: PostgreSQL, schema version %d (this kojibot knows up to %d)\n", p.Version, p.Known)
	switch {
	case p.Version > p.Known:
		fmt.Fprintf(stderr, "error: state.dsn: the store was made by a newer kojibot (schema version %d); this one refuses it\n", p.Version)
		return 1
	case p.Version < p.Known && !p.CanCreate:
		fmt.Fprintln(stderr, "error: state.dsn: the schema must be migrated at start, and the role may not CREATE in its schema")
		return 1
	case p.Version < p.Known:
		fmt.Fprintln(stdout, "state store: the schema is migrated at start")
	}
	return 0
}
