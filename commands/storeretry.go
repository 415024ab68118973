package commands

import (
	"context"
	"log/slog"
	"time"
)

// How a write to the state store that failed is tried again: every
// storeRetryEvery, for up to storeRetryFor. A store that restarts (its
// PostgreSQL, a full disk freed) takes it once it is back.
var (
	storeRetryEvery = time.Second
	storeRetryFor   = 10 * time.Minute
)

// retryStore tries write again in the background until it succeeds or
// storeRetryFor has passed, so that a journal record closed, or a job's
// end recorded, while the store was away does not stay open in it: an
// open record would have the next launch restart a service that runs,
// and `jobs --all` show a job that ended as running.
func retryStore(log *slog.Logger, what string, write func(context.Context) error) {
	go func() {
		deadline := time.Now().Add(storeRetryFor)
		var err error
		for time.Now().Before(deadline) {
			time.Sleep(storeRetryEvery)
			ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
			err = write(ctx)
			cancel()
			if err == nil {
				log.Info("state store: written after a retry", "what", what)
				return
			}
		}
		log.Error("state store: given up retrying", "what", what, "error", err)
	}()
}
