// Command chaos is `make chaos`: kojibot's fault run on the sandbox farm
// (package chaos), with the seed, the number of faults, the state store,
// the replicas and Matrix as flags. It prints each fault, its recovery
// time and a summary, and exits 1 on a violation (with the seed and the schedule,
// to repeat the run) or 2 when the farm could not be started.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/tests/chaos"
)

func main() {
	seed := flag.Int64("seed", 0, "the schedule's seed (0: a random one, printed)")
	faults := flag.Int("faults", 120, "how many faults")
	store := flag.String("store", chaos.StorePostgres, "the bot's state store: postgres (state.dsn) or sqlite (state.dir)")
	replicas := flag.Int("replicas", 1, "kojibot run processes sharing the store")
	matrix := flag.Bool("matrix", true, "a homeserver beside IRC: some callers on Matrix, homeserver restarts among the faults")
	settle := flag.Duration("settle", 3*time.Minute, "how long the farm may take to settle after a fault")
	flag.Parse()
	if *seed == 0 {
		*seed = rand.Int64N(1<<31) + 1
	}
	m := 0
	if *matrix {
		m = 1
	}
	fmt.Printf("chaos: SEED=%d FAULTS=%d STORE=%s REPLICAS=%d MATRIX=%d\n", *seed, *faults, *store, *replicas, m)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := chaos.Run(ctx, chaos.Options{Seed: *seed, Faults: *faults, Store: *store, Replicas: *replicas, Matrix: *matrix,
		Settle: *settle, Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if len(rep.Violations()) > 0 {
		os.Exit(1)
	}
}
