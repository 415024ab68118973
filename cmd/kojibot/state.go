package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/commands/state"
)

// errorLine is said when the journal cannot be read.
const errorLine = "recovery: could not read the journal in state.dir; services an earlier kojibot stopped may still be down: check by hand"

// recoverJournal restores what earlier kojibot processes left stopped
// and returns the lines that say what it found and did;
// none when the journal was clean. Call it before serving anything.
func recoverJournal(ctx context.Context, sys *system) []string {
	r, err := sys.dispatcher.Recover(ctx)
	lines := r.Lines()
	if err != nil {
		sys.log.Error("recovery failed", "error", err)
		lines = append(lines, errorLine)
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

// signalContext is a context cancelled by the first SIGINT, SIGTERM,
// SIGHUP (the operator's terminal or SSH session went away) or SIGQUIT;
// caught() tells which one it was (nil when none). Later signals are
// caught too, and only said to be ignored on stderr: the job is
// restoring what it stopped.
func signalContext(parent context.Context, stderr io.Writer) (ctx context.Context, caught func() os.Signal, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
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
				// The terminal may be gone (SIGHUP): a failed write is no reason to stop.
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

// becomeStateOwner makes a kojibot started as root run as the owner of
// dir (state.dir) from now on: its uid, its primary group and its
// supplementary groups. Call it after the secrets only root may read are
// read, and before the store is opened, so that whatever kojibot writes in
// dir belongs to that owner (the `kojibot` user of `run`), and no file
// there, link or not, is ever opened with root's rights. A missing dir is
// left to the store to create; under any other uid nothing changes here
// (the store refuses a dir that is not its own).
func becomeStateOwner(dir string, log *slog.Logger) error {
	if os.Geteuid() != 0 || dir == "" {
		return nil
	}
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (a symbolic link is refused)", dir)
	}
	uid, gid, ok := state.OwnerOf(fi)
	if !ok || uid == 0 {
		return nil
	}
	groups := []int{}
	name := "uid " + strconv.Itoa(uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		name = u.Username
		if g, err := strconv.Atoi(u.Gid); err == nil {
			gid = g
		}
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if g, err := strconv.Atoi(id); err == nil {
					groups = append(groups, g)
				}
			}
		}
	}
	// Groups first: once the uid is dropped they cannot be changed. Go
	// applies each call to every thread of the process.
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("switching to %s, the owner of %s: setgroups: %w", name, dir, err)
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return fmt.Errorf("switching to %s, the owner of %s: setresgid: %w", name, dir, err)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("switching to %s, the owner of %s: setresuid: %w", name, dir, err)
	}
	log.Info("started as root: now running as the owner of state.dir", "user", name, "uid", uid, "gid", gid)
	return nil
}

// Either store is what the commands need of a state store.
var _ commands.StateStore = state.Backend(nil)

// holdersEvery is how often a process on a PostgreSQL store looks for
// open journal records whose holder is gone (see orphansWaiting).
var holdersEvery = time.Second

// claimOrphansEvery runs the recovery every interval until ctx ends, and
// tells what it found and did to notify. On a PostgreSQL store it also
// runs it as soon as a process holding open journal records is gone
// (orphansWaiting, every holdersEvery): a leader cut from the store
// cancels its jobs and restores what they stopped, but its writes are
// fenced, so it leaves its records open when it exits; they are claimed
// then, not a watch interval later. A process that cannot be checked and
// still runs is told once, not at every round; so is a journal that
// cannot be read.
func claimOrphansEvery(ctx context.Context, sys *system, interval time.Duration, notify func(string)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var holders <-chan time.Time
	st, onPG := sys.state.(statusReader)
	if onPG && sys.cfg.State.DSN.Reveal() != "" {
		h := time.NewTicker(holdersEvery)
		defer h.Stop()
		holders = h.C
	}
	told := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-holders:
			if !orphansWaiting(ctx, st) {
				continue
			}
		}
		r, err := sys.dispatcher.Recover(ctx)
		var fresh []string
		for _, u := range r.Unverified {
			if !told[u] {
				told[u] = true
				fresh = append(fresh, u)
			}
		}
		r.Unverified = fresh
		lines := r.Lines()
		if err != nil && ctx.Err() == nil {
			sys.log.Error("recovery failed", "error", err)
			if !told[errorLine] {
				told[errorLine] = true
				lines = append(lines, errorLine)
			}
		}
		for _, l := range lines {
			sys.log.Warn(l)
			notify(l)
		}
	}
}

// statusReader reads a store's processes and open journal records, as
// *state.Store does on its own connections.
type statusReader interface {
	Status(ctx context.Context) (state.Status, error)
}

// orphansWaiting reports whether the store has an open journal record of
// a process that is not alive (whose lock is gone): one for the recovery
// to claim now. A store it cannot read has none.
func orphansWaiting(ctx context.Context, store statusReader) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := store.Status(ctx)
	if err != nil {
		return false
	}
	live := map[int]bool{}
	for _, p := range st.Processes {
		live[p.PID] = true
	}
	for _, e := range st.Open {
		if !live[e.PID] {
			return true
		}
	}
	return false
}
