package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
)

// lockedBuffer is an io.Writer a test may read while a process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cancelWindow waits, on the builder, until the clean-up has stopped both
// services and begun unmounting; alive reports (when set) whether the
// process running it is still there.
func cancelWindow(t *testing.T, count func() int, alive func() bool, out func() string) {
	t.Helper()
	deadline := time.Now().Add(bldWait)
	for {
		if alive != nil && !alive() {
			t.Fatalf("the clean-up ended before its unmounting step:\n%s", out())
		}
		o, err := sb.Farm.Service(bldBuilder, "is-active", "plague-builder")
		if err != nil && strings.TrimSpace(o) == "inactive" && count() < crashMounts {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the clean-up did not reach its unmounting step: %q %v\n%s", o, err, out())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCancelAcrossProcesses: `cancel <job>` said to `kojibot run` (on
// IRC) of a clean-up that a `kojibot exec` beside it runs, and the reverse,
// says that another process runs the job and asks it, through the state
// store, to cancel it. That process cancels the job as if its own caller
// had asked: the services are started again, the work stops part-way, and
// the job's caller is told who asked.
func TestCancelAcrossProcesses(t *testing.T) {
	const nick, channel = "kojibot-xcancel", "#xcancel"
	path, _ := crashConfig(t, nick, channel)
	cancelAcrossProcesses(t, nick, channel, path)
}

// cancelAcrossProcesses is TestCancelAcrossProcesses with the bot of
// config path (nick, in channel), whichever its state store.
func cancelAcrossProcesses(t *testing.T, nick, channel, path string) {
	b, err := sb.StartBot(binary, nick, path)
	if err != nil {
		t.Fatal(err)
	}
	botChannel[nick], bots[nick] = channel, b
	t.Cleanup(func() {
		b.Stop()
		delete(bots, nick)
		delete(botChannel, nick)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := waitJoined(ctx, nick); err != nil {
		t.Fatal(err)
	}
	alice := join(t, nick, "alice", "")

	t.Run("exec job cancelled from run", func(t *testing.T) {
		count := crashSlowEntry(t, 1061)
		journal := bldJournal(t, bldBuilder)
		cmd := exec.Command(binary, "exec", "--config", path, "--as", "alice", "--yes", "--", "cleanup", bldBuilder)
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := harness.Spawn(cmd); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var ended bool
		var waitErr error
		alive := func() bool {
			if !ended {
				select {
				case waitErr = <-done:
					ended = true
				default:
				}
			}
			return !ended
		}
		t.Cleanup(func() {
			if alive() {
				_ = cmd.Process.Kill()
				<-done
			}
		})
		cancelWindow(t, count, alive, out.String)
		m := regexp.MustCompile(`job ([0-9]+) started: cleanup `).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("exec did not say which job it started:\n%s", out.String())
		}
		id := m[1]

		got := alice.ask("cancel " + id)
		if want := "job " + id + " (cleanup " + bldBuilder + ") runs in another kojibot process (kojibot exec, pid "; !strings.HasPrefix(got, want) ||
			!strings.Contains(got, "asked it to cancel the job") {
			t.Fatalf("cancel on IRC: %q, want %q…", got, want)
		}
		deadline := time.Now().Add(bldWait)
		for alive() {
			if time.Now().After(deadline) {
				t.Fatalf("exec did not end after the cancel:\n%s", out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		text := out.String()
		if waitErr != nil {
			t.Errorf("exec: %v\n%s", waitErr, text)
		}
		bldInOrder(t, strings.Split(text, "\n"),
			bldBuilder+": stopped kojid, plague-builder",
			"cancelling job "+id+" (cleanup "+bldBuilder+"): alice asked for it (in "+channel+", to another kojibot process)",
			bldBuilder+": started kojid, plague-builder again",
			"job "+id+" cancelled after ")
		bldActive(t, bldBuilder, bldServices...)
		if got := bldJournalSince(t, bldBuilder, journal); !slices.Equal(got, bldStopStart) {
			t.Errorf("services journal %q, want %q", got, bldStopStart)
		}
		if n := count(); n == 0 {
			t.Errorf("every mount was unmounted: the cancel did not stop the job")
		}
	})

	t.Run("run job cancelled from exec", func(t *testing.T) {
		count := crashSlowEntry(t, 1062)
		journal := bldJournal(t, bldBuilder)
		_, _, token := bldPlan(alice, "cleanup "+bldBuilder)
		bldSend(alice, "confirm "+token)
		id, _ := bldStarted(alice, "the slow clean-up")
		ended := false
		t.Cleanup(func() {
			if !ended {
				_ = alice.c.Privmsg(alice.channel, "!koji cancel "+id)
				bldJobEnd(alice, id)
			}
		})
		cancelWindow(t, count, nil, func() string { return tail(b.Output(), 40) })

		out, err := exec.Command(binary, "exec", "--config", path, "--as", "alice", "--", "cancel", id).CombinedOutput()
		if err != nil {
			t.Errorf("exec cancel: %v\n%s", err, out)
		}
		if want := "job " + id + " (cleanup " + bldBuilder + ") runs in another kojibot process (kojibot run, pid "; !strings.HasPrefix(string(out), want) ||
			!strings.Contains(string(out), "asked it to cancel the job") {
			t.Fatalf("exec cancel: %q, want %q…", out, want)
		}
		lines := bldJobEnd(alice, id)
		ended = true
		bldInOrder(t, lines,
			"cancelling job "+id+" (cleanup "+bldBuilder+"): alice asked for it (in exec, to another kojibot process)",
			bldBuilder+": started kojid, plague-builder again",
			"job "+id+" cancelled after ")
		bldActive(t, bldBuilder, bldServices...)
		if got := bldJournalSince(t, bldBuilder, journal); !slices.Equal(got, bldStopStart) {
			t.Errorf("services journal %q, want %q", got, bldStopStart)
		}
		if n := count(); n == 0 {
			t.Errorf("every mount was unmounted: the cancel did not stop the job")
		}
	})
}
