package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/commands/state"
)

// recoverJournal restores what earlier kojibot processes left stopped
// and returns the lines that say what it found and did;
// none when the journal was clean. Call it before serving anything.
func recoverJournal(ctx context.Context, sys *system) []string {
	r, err := sys.dispatcher.Recover(ctx)
	lines := r.Lines()
	if err != nil {
		sys.log.Error("recovery failed", "error", err)
		lines = append(lines, "recovery: could not read the journal in state.dir; services an earlier kojibot stopped may still be down: check by hand")
	}
	for _, l := range lines {
		sys.log.Warn(l)
	}
	return lines
}

// shutdownJobs cancels the running jobs and waits up to shutdown_timeout
// for them to restore what they stopped; it logs what is left. Whatever is
// still open when the time runs out stays in the journal for the next
// start. Only the first call does anything.
func (s *system) shutdownJobs() {
	s.shutdownOnce.Do(func() {
		timeout := s.cfg.ShutdownTimeout
		s.log.Info("shutting down: cancelling the running jobs", "timeout", timeout)
		left := s.dispatcher.Shutdown(timeout)
		if len(left) == 0 {
			s.log.Info("shutdown: every job ended")
			return
		}
		for _, j := range left {
			s.log.Error("shutdown: job still running after shutdown_timeout; the journal keeps what it stopped for the next start",
				"job", j.ID, "command", j.Command, "owner", j.Owner)
		}
	})
}

// signalContext is a context cancelled by the first SIGINT or SIGTERM;
// caught() tells which one it was (nil when none). Later signals are
// caught too, and only said to be ignored on stderr: the job is
// restoring what it stopped.
func signalContext(parent context.Context, stderr io.Writer) (ctx context.Context, caught func() os.Signal, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var mu sync.Mutex
	var first os.Signal
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				mu.Lock()
				if first == nil {
					first = s
					mu.Unlock()
					fmt.Fprintf(stderr, "kojibot: %v: cancelling; what the job stopped is started again before exiting\n", s)
					cancel()
					continue
				}
				mu.Unlock()
				fmt.Fprintf(stderr, "kojibot: %v: still restoring services, please wait\n", s)
			case <-done:
				return
			}
		}
	}()
	caught = func() os.Signal {
		mu.Lock()
		defer mu.Unlock()
		return first
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
			cancel()
		})
	}
	return ctx, caught, stop
}

// signalExit is the conventional exit status for death by s: 128 + its
// number (130 for SIGINT, 143 for SIGTERM).
func signalExit(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}

// waitJobs waits for the dispatcher's jobs to end; when ctx ends first
// (exec interrupted), it cancels them and waits, within shutdown_timeout,
// for them to restore what they stopped.
func waitJobs(ctx context.Context, sys *system) {
	done := make(chan struct{})
	go func() { sys.dispatcher.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		sys.shutdownJobs()
	}
}

// The embedded store is what the commands need of a state store.
var _ commands.StateStore = (*state.Store)(nil)
