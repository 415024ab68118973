package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/builders"
	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// Crash safety: a job killed while the builder's services
// are stopped leaves them in the journal, and the next kojibot starts them
// again; a SIGTERM or SIGINT to exec restores them before it exits.
// Helpers are prefixed crash.

// crashMounts is how many bind mounts hold the clean-up in its unmounting
// step (services stopped) long enough to be interrupted there: each is
// unmounted with its own remote command and journal record.
const crashMounts = 1000

// crashSlowEntry makes an old buildroot on xenbuilder2 holding
// crashMounts bind mounts, removed (with the services started) when the
// test ends, and returns a function counting the mounts left.
func crashSlowEntry(t *testing.T, id int) func() int {
	t.Helper()
	slow := fmt.Sprintf("%s/f40-build-%d-55", builders.MockDir, id)
	src := fmt.Sprintf("%s/kojibot-e2e-crash-src-%d", builders.BuildDir, id)
	bldCleanup(t, bldBuilder, bldUnmountUnder(slow)+"\nrm -rf "+slow+" "+src+"\n"+bldStartServices())
	bldExec(t, bldBuilder, fmt.Sprintf(`set -e
mkdir -p %[1]s && echo src > %[1]s/file
mkdir -p %[2]s && cd %[2]s && mkdir $(seq -f m%%g %[3]d)
for i in $(seq %[3]d); do mount --bind %[1]s m$i; done
touch -d '10 days ago' %[2]s`, src, slow, crashMounts))
	count := func() int {
		n, _ := strconv.Atoi(strings.TrimSpace(bldExec(t, bldBuilder, "grep -c ' "+slow+"/' /proc/mounts || true")))
		return n
	}
	if n := count(); n != crashMounts {
		t.Fatalf("%d mounts set up, want %d", n, crashMounts)
	}
	return count
}

// crashConfig writes the config of a bot nick in channel whose state
// store is a directory of the test's own.
func crashConfig(t *testing.T, nick, channel string) (path, stateDir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stateDir = t.TempDir()
	path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: nick, DB: "koji", Channel: channel,
		Extra: map[string]any{"state": map[string]any{"dir": stateDir}}})
	if err != nil {
		t.Fatal(err)
	}
	return path, stateDir
}

// crashExec starts `kojibot exec --config path --as alice --yes -- args...`.
func crashExec(t *testing.T, path string, args ...string) (*exec.Cmd, *bytes.Buffer, chan error) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"exec", "--config", path, "--as", "alice", "--yes", "--"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := harness.Spawn(cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		done <- nil
	})
	return cmd, &out, done
}

// crashWaitStopped waits, on the builder itself, until both services are
// stopped and the unmounting has begun: the job is inside its window.
func crashWaitStopped(t *testing.T, count func() int, out *bytes.Buffer, done chan error) {
	t.Helper()
	deadline := time.Now().Add(bldWait)
	for {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("exec ended before the window (%v):\n%s", err, out)
		default:
		}
		o, err := sb.Farm.Service(bldBuilder, "is-active", "plague-builder")
		if err != nil && strings.TrimSpace(o) == "inactive" && count() < crashMounts {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the clean-up did not reach its unmounting step: %q %v\n%s", o, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// crashInactive fails the test unless every service is stopped on host.
func crashInactive(t *testing.T, host string, services ...string) {
	t.Helper()
	for _, s := range services {
		if out, err := sb.Farm.Service(host, "is-active", s); err == nil || strings.TrimSpace(out) != "inactive" {
			t.Errorf("%s on %s should be stopped: %q %v", s, host, out, err)
		}
	}
}

// TestCrashExecKilledRunRestores: an exec clean-up SIGKILLed while the
// builder's services are stopped leaves them stopped; the next `run` with
// the same state dir starts them again before serving, says so in the
// notify channel, and reports the mount it was unmounting. jobs --all
// (from an exec beside that run) shows the killed job as interrupted.
func TestCrashExecKilledRunRestores(t *testing.T) {
	const nick, channel = "kojibot-crash", "#crash"
	count := crashSlowEntry(t, 1041)
	path, _ := crashConfig(t, nick, channel)
	journal := bldJournal(t, bldBuilder)

	cmd, out, done := crashExec(t, path, "cleanup", bldBuilder)
	crashWaitStopped(t, count, out, done)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatalf("exec was not killed:\n%s", out)
	}
	done <- nil
	// Nothing restored them: the process died.
	time.Sleep(500 * time.Millisecond)
	crashInactive(t, bldBuilder, bldServices...)
	if got := bldJournalSince(t, bldBuilder, journal); !slices.Equal(got, []string{"stop kojid ok", "stop plague-builder ok"}) {
		t.Fatalf("services journal after the kill: %q", got)
	}
	left := count()
	t.Logf("killed with %d of %d mounts left", left, crashMounts)

	// A watcher in the notify channel before the bot comes.
	ctx, cancel := context.WithTimeout(context.Background(), bldWait)
	defer cancel()
	w, err := ircnet.Dial(ctx, sb.IRC.Addr(), fmt.Sprintf("crashw%d", time.Now().UnixNano()%100000), ircnet.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Quit()
	if err := w.Join(ctx, channel); err != nil {
		t.Fatal(err)
	}
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
	var said []string
	for !slices.ContainsFunc(said, func(l string) bool { return strings.Contains(l, "recovery: an interrupted clean-up") }) {
		m, err := w.Expect(ctx, func(m ircnet.Message) bool {
			return (m.Command == "PRIVMSG" || m.Command == "NOTICE") && m.Source == nick && m.Target() == channel
		})
		if err != nil {
			t.Fatalf("waiting for the recovery report; got %q: %v\nbot output:\n%s", said, err, tail(b.Output(), 40))
		}
		said = append(said, m.Text)
	}
	text := strings.Join(said, "\n")
	for _, want := range []string{
		"listed 2 services left stopped",
		"started again: kojid on " + bldBuilder + " (job ", "by alice)", "plague-builder on " + bldBuilder,
		"check these mounts by hand: " + builders.MockDir + "/f40-build-1041-55/m",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("recovery report lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "could not start") {
		t.Errorf("recovery failed:\n%s", text)
	}
	bldActive(t, bldBuilder, bldServices...)
	if got := bldJournalSince(t, bldBuilder, journal); !slices.Equal(got, bldStopStart) {
		t.Errorf("services journal %q, want %q", got, bldStopStart)
	}
	if n := count(); n != left {
		t.Errorf("mounts changed by the recovery: %d, then %d", left, n)
	}

	// exec beside the running bot: the journal is the bot's now, nothing to
	// recover; the killed job is listed as interrupted.
	_, jout, jdone := crashExec(t, path, "jobs", "--all")
	select {
	case err := <-jdone:
		jdone <- nil
		if err != nil {
			t.Errorf("exec jobs --all: %v\n%s", err, jout)
		}
	case <-time.After(bldWait):
		t.Fatalf("exec jobs --all hung:\n%s", jout)
	}
	if got := jout.String(); !regexp.MustCompile(`(?m)^ *[0-9]+  cleanup `+bldBuilder+`  +alice  +exec  +interrupted`).MatchString(got) || strings.Contains(got, "recovery:") {
		t.Errorf("exec jobs --all:\n%s", got)
	}
}

// TestExecSignal: SIGTERM, SIGINT, SIGHUP (the operator's SSH session
// dropped) or SIGQUIT to exec in the middle of a clean-up cancels the job,
// which starts the builder's services again, and exec exits 128 + the
// signal; the journal is left with nothing to recover.
func TestExecSignal(t *testing.T) {
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			count := crashSlowEntry(t, 1051+i)
			path, _ := crashConfig(t, fmt.Sprintf("kojibot-sig%d", i), "#sig")
			journal := bldJournal(t, bldBuilder)
			cmd, out, done := crashExec(t, path, "cleanup", bldBuilder)
			crashWaitStopped(t, count, out, done)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-done:
				done <- nil
			case <-time.After(bldWait):
				t.Fatalf("exec did not end after %v:\n%s", sig, out)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 128+int(sig) {
				t.Errorf("exec after %v: %v, want exit %d\n%s", sig, err, 128+int(sig), out)
			}
			bldActive(t, bldBuilder, bldServices...)
			if got := bldJournalSince(t, bldBuilder, journal); !slices.Equal(got, bldStopStart) {
				t.Errorf("services journal %q, want %q", got, bldStopStart)
			}
			text := out.String()
			for _, want := range []string{bldBuilder + ": started kojid, plague-builder again", " cancelled after "} {
				if !strings.Contains(text, want) {
					t.Errorf("exec output lacks %q:\n%s", want, text)
				}
			}
			if n := count(); n == 0 {
				t.Errorf("every mount was unmounted: the signal did not stop the job")
			}
			// The next exec has nothing to recover.
			_, again, adone := crashExec(t, path, "jobs")
			if err := <-adone; err != nil {
				t.Errorf("next exec: %v\n%s", err, again)
			}
			adone <- nil
			if strings.Contains(again.String(), "recovery:") {
				t.Errorf("the journal was left open:\n%s", again)
			}
		})
	}
}

// TestRunClaimsOrphansWhileUp: an exec that dies (SIGKILL) while a `run`
// with the same state dir is up leaves the builder's services stopped;
// that run claims its records at its next watch interval, starts the
// services again and says so in the notify channel.
func TestRunClaimsOrphansWhileUp(t *testing.T) {
	const nick, channel = "kojibot-claim", "#claim"
	count := crashSlowEntry(t, 1061)
	ctx, cancel := context.WithTimeout(context.Background(), 3*bldWait)
	defer cancel()
	stateDir := t.TempDir()
	path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: nick, DB: "koji", Channel: channel,
		Extra: map[string]any{"state": map[string]any{"dir": stateDir}, "watch": map[string]any{"interval": "3s"}}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := ircnet.Dial(ctx, sb.IRC.Addr(), fmt.Sprintf("claimw%d", time.Now().UnixNano()%100000), ircnet.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Quit()
	if err := w.Join(ctx, channel); err != nil {
		t.Fatal(err)
	}
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
	if err := waitJoined(ctx, nick); err != nil {
		t.Fatalf("%v\nbot output:\n%s", err, tail(b.Output(), 40))
	}
	journal := bldJournal(t, bldBuilder)

	cmd, out, done := crashExec(t, path, "cleanup", bldBuilder)
	crashWaitStopped(t, count, out, done)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatalf("exec was not killed:\n%s", out)
	}
	done <- nil
	killed := time.Now()

	// A few watch intervals, and the time to start two services.
	rctx, rcancel := context.WithTimeout(ctx, time.Minute)
	defer rcancel()
	var said []string
	for !slices.ContainsFunc(said, func(l string) bool { return strings.Contains(l, "recovery: started again") }) {
		m, err := w.Expect(rctx, func(m ircnet.Message) bool {
			return (m.Command == "PRIVMSG" || m.Command == "NOTICE") && m.Source == nick && m.Target() == channel
		})
		if err != nil {
			t.Fatalf("waiting for the recovery report; got %q: %v\nbot output:\n%s", said, err, tail(b.Output(), 40))
		}
		if strings.Contains(m.Text, "recovery:") {
			said = append(said, m.Text)
		}
	}
	t.Logf("restored %v after the kill", time.Since(killed).Round(time.Second))
	text := strings.Join(said, "\n")
	for _, want := range []string{"listed 2 services left stopped", "started again: kojid on " + bldBuilder + " (job ", "by alice)", "plague-builder on " + bldBuilder} {
		if !strings.Contains(text, want) {
			t.Errorf("recovery report lacks %q:\n%s", want, text)
		}
	}
	bldActive(t, bldBuilder, bldServices...)
	if got := bldJournalSince(t, bldBuilder, journal); !slices.Equal(got, bldStopStart) {
		t.Errorf("services journal %q, want %q", got, bldStopStart)
	}
}
