package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fedora-infra/kojibot/config"
	"golang.org/x/crypto/ssh"
)

// RunOptions adjusts one Run. The zero value uses the configured limits.
type RunOptions struct {
	// Timeout replaces ssh.command_timeout for this command when > 0. The
	// context's own deadline still applies when it is sooner.
	Timeout time.Duration
	// MaxOutput replaces ssh.max_output (bytes kept of stdout and of
	// stderr) when > 0.
	MaxOutput int
	// Stdin, when not empty, is written to the command's standard input.
	Stdin string
}

// Result is what a remote command produced. A non-zero ExitCode is not an
// error of Run: callers decide what it means.
type Result struct {
	Stdout string
	Stderr string
	// ExitCode is the command's exit status; -1 when it was killed by a
	// signal (Signal names it) or stopped because its context ended.
	ExitCode int
	// Signal is the signal that killed the remote command ("KILL", ...), if any.
	Signal string
	// Truncated is true when stdout or stderr went over the output cap and
	// only its beginning was kept.
	Truncated bool
	// Duration is how long the command ran.
	Duration time.Duration
}

// Whole returns nil when the command's output was kept whole, and an error
// wrapping ErrOutputTruncated naming what when stdout or stderr went over
// the output cap. Every reader that acts on a command's output (a listing,
// /proc/mounts, du) must call it first: a cut record must never be taken
// for a real one.
func (r Result) Whole(what string) error {
	if r.Truncated {
		return fmt.Errorf("%s: %w: over the output cap (ssh.max_output); nothing was read from it", what, ErrOutputTruncated)
	}
	return nil
}

// Run runs argv on host and waits for it. Every element of argv passes
// through Quote; the remote login shell (which must be a POSIX shell) runs
// the joined line. The command gets ssh.command_timeout (or opts.Timeout),
// or less when ctx ends sooner. When ctx ends the remote command is
// stopped — the session is sent SIGKILL, its process group is killed and
// the session closed — and Run returns what was read so far with an error
// wrapping ErrTimeout (deadline) or context.Canceled.
//
// Transport failures are errors naming the host: ErrUnknownHost,
// ErrUnreachable, ErrUnknownHostKey, ErrHostKeyChanged, ErrAuth. A
// command that ran and exited non-zero is not an error: see
// Result.ExitCode.
func (f *Fleet) Run(ctx context.Context, host string, argv []string, opts RunOptions) (Result, error) {
	line, err := Join(argv)
	if err != nil {
		return Result{ExitCode: -1}, fmt.Errorf("fleet: %s: %w: %w", f.label(host), ErrInvalid, err)
	}
	return f.runLine(ctx, host, "exec "+line, line, opts)
}

// pidMarker starts the line every command prints first: the PID of the
// remote shell, which sshd made a session and process group leader.
const pidMarker = "kojibot-pid:"

// runLine runs a command line (already quoted) on host; shown is how logs
// and errors name it.
func (f *Fleet) runLine(ctx context.Context, host, line, shown string, opts RunOptions) (Result, error) {
	res := Result{ExitCode: -1}
	limit := f.cfg.CommandTimeout
	if opts.Timeout > 0 {
		limit = opts.Timeout
	}
	keep := f.cfg.MaxOutput
	if opts.MaxOutput > 0 {
		keep = opts.MaxOutput
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	label := f.label(host)
	log := f.log.With("host", host, "command", shown)

	sess, release, err := f.session(ctx, host, limit)
	if err != nil {
		return res, err
	}
	defer release()

	stdout, stderr := &capped{max: keep}, &capped{max: keep}
	pid := &pidReader{next: stdout}
	sess.Stdout, sess.Stderr = pid, stderr
	if opts.Stdin != "" {
		sess.Stdin = strings.NewReader(opts.Stdin)
	}
	collect := func() {
		pid.flush()
		res.Stdout, res.Stderr = stdout.String(), stderr.String()
		res.Truncated = stdout.truncated() || stderr.truncated()
	}

	start := time.Now()
	log.Debug("ssh run")
	if err := sess.Start("echo " + pidMarker + "$$; " + line); err != nil {
		sess.Close()
		return res, fmt.Errorf("fleet: %s: %w: starting command: %w", label, ErrUnreachable, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()

	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		select {
		case werr = <-waited: // finished at the same moment: keep its result
		default:
			f.stop(host, sess, pid.get(), waited, log)
			res.Duration = time.Since(start)
			collect()
			err := ctxError(ctx, label, "command "+shown, limit)
			log.Warn("ssh command stopped", "err", err, "took", res.Duration)
			return res, err
		}
	}
	res.Duration = time.Since(start)
	collect()
	sess.Close()

	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case werr == nil:
		res.ExitCode = 0
	case errors.As(werr, &exit):
		res.ExitCode = exit.ExitStatus()
		if exit.Signal() != "" {
			res.ExitCode, res.Signal = -1, exit.Signal()
		}
	case errors.As(werr, &missing):
		return res, fmt.Errorf("fleet: %s: %w: connection lost before the command exited", label, ErrUnreachable)
	default:
		return res, fmt.Errorf("fleet: %s: %w: %w", label, ErrUnreachable, werr)
	}
	log.Debug("ssh done", "exit", res.ExitCode, "signal", res.Signal, "took", res.Duration)
	return res, nil
}

// termGrace is how long stop waits after SIGTERM before SIGKILL.
const termGrace = 3 * time.Second

// stop ends a running remote command. First SIGTERM, through the session
// (sshd sends it to the session's process group, but refuses for root
// logins) and with `kill -s TERM -- -PID` on the process group from a
// second session: sudo relays SIGTERM to the root command it runs (the
// helper's rm, umount, systemctl), which the unprivileged login could not
// signal itself. If the command has not exited after termGrace, SIGKILL
// the same two ways (which reaches everything the login may signal; a
// root command behind sudo survives a SIGKILL of sudo), then the session
// is closed. It waits at most the connect timeout for each step.
func (f *Fleet) stop(host string, sess *ssh.Session, pid int, waited <-chan error, log *slog.Logger) {
	signal := func(sig ssh.Signal, name string) {
		_ = sess.Signal(sig)
		if pid <= 1 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), f.cfg.ConnectTimeout)
		defer cancel()
		if err := f.signalGroup(ctx, host, pid, name); err != nil {
			log.Warn("could not signal the remote process group; it may still run", "pid", pid, "signal", name, "err", err)
		}
	}
	if pid <= 1 {
		log.Warn("remote PID unknown; only the session is signalled")
	}
	signal(ssh.SIGTERM, "TERM")
	select {
	case <-waited:
		_ = sess.Close()
		return
	case <-time.After(termGrace):
	}
	signal(ssh.SIGKILL, "KILL")
	_ = sess.Close()
	select {
	case <-waited:
	case <-time.After(f.cfg.ConnectTimeout):
	}
}

// signalGroup sends signal name (TERM or KILL) to the process group pgid
// on host.
func (f *Fleet) signalGroup(ctx context.Context, host string, pgid int, name string) error {
	sess, release, err := f.session(ctx, host, f.cfg.ConnectTimeout)
	if err != nil {
		return err
	}
	defer release()
	defer sess.Close()
	done := make(chan error, 1)
	go func() { done <- sess.Run("kill -s " + name + " -- -" + strconv.Itoa(pgid) + " 2>/dev/null; true") }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pidReader takes the first line of a command's stdout when it is the
// PID marker, and passes everything else on.
type pidReader struct {
	mu   sync.Mutex
	next io.Writer
	head []byte // the first line, until complete
	done bool
	pid  int
}

// Write implements io.Writer.
func (p *pidReader) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	if !p.done {
		i := bytes.IndexByte(b, '\n')
		if i < 0 && len(p.head)+len(b) < 64 {
			p.head = append(p.head, b...)
			return n, nil
		}
		p.done = true
		if i < 0 {
			i = len(b) - 1
		}
		first := append(p.head, b[:i+1]...)
		p.head = nil
		b = b[i+1:]
		line := strings.TrimSuffix(string(first), "\n")
		if v, ok := strings.CutPrefix(line, pidMarker); ok {
			p.pid, _ = strconv.Atoi(v)
		} else if _, err := p.next.Write(first); err != nil {
			return n, err
		}
	}
	if len(b) > 0 {
		if _, err := p.next.Write(b); err != nil {
			return n, err
		}
	}
	return n, nil
}

// flush passes on a first line that never ended (and so was no marker).
func (p *pidReader) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done && len(p.head) > 0 {
		_, _ = p.next.Write(p.head)
	}
	p.head, p.done = nil, true
}

func (p *pidReader) get() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// maxRefusals is how many times a refused session is tried again.
const maxRefusals = 8

// session opens a session on host's connection within ctx. A cached
// connection that turns out to be dead is dropped and redialled once. The
// returned func gives back the host's session slot.
func (f *Fleet) session(ctx context.Context, host string, limit time.Duration) (*ssh.Session, func(), error) {
	label := f.label(host)
	refusals := 0
	for attempt := 0; ; attempt++ {
		l, e, err := f.connect(ctx, host)
		if err != nil {
			return nil, nil, err
		}
		select {
		case e.sessions <- struct{}{}:
		case <-ctx.Done():
			return nil, nil, ctxError(ctx, label, "waiting for a session slot", limit)
		}
		release := func() { <-e.sessions }
		sess, err := f.openSession(ctx, l, label)
		if err == nil {
			return sess, release, nil
		}
		release()
		if ctx.Err() != nil {
			return nil, nil, ctxError(ctx, label, "opening session", limit)
		}
		var refused *ssh.OpenChannelError
		if errors.As(err, &refused) {
			// sshd frees a session's slot a moment after the session ends,
			// so a busy connection can refuse briefly (MaxSessions): wait
			// and try again before giving up.
			if refusals < maxRefusals {
				refusals++
				attempt--
				select {
				case <-time.After(time.Duration(refusals) * 50 * time.Millisecond):
					continue
				case <-ctx.Done():
					return nil, nil, ctxError(ctx, label, "opening session", limit)
				}
			}
			return nil, nil, fmt.Errorf("fleet: %s: %w: session refused: %w", label, ErrUnreachable, err)
		}
		l.close()
		if attempt > 0 {
			return nil, nil, fmt.Errorf("fleet: %s: %w: opening session: %w", label, ErrUnreachable, err)
		}
		f.log.Info("ssh connection dead, redialling", "host", label, "err", err)
	}
}

// openSession opens a session on l, giving up when ctx ends. A session
// still opening then is closed when it arrives, and the connection is
// probed (and dropped when it does not answer).
func (f *Fleet) openSession(ctx context.Context, l *link, label string) (*ssh.Session, error) {
	type opened struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := l.client.NewSession()
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		return o.s, o.err
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.s != nil {
				o.s.Close()
			}
		}()
		go f.probe(l, label)
		return nil, ctx.Err()
	}
}

// capped keeps the first max bytes written to it and counts the rest.
type capped struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped int64
}

// Write keeps what fits under the cap; it never fails, so the remote
// output is drained.
func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - len(c.buf)
	if room > len(p) {
		room = len(p)
	}
	if room > 0 {
		c.buf = append(c.buf, p[:room]...)
	}
	c.dropped += int64(len(p) - room)
	return len(p), nil
}

// String returns what was kept; when output was dropped it ends on a
// UTF-8 boundary.
func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf
	if c.dropped > 0 {
		for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
			r, size := utf8.DecodeLastRune(b)
			if r != utf8.RuneError || size != 1 {
				break
			}
			b = b[:len(b)-1]
		}
	}
	return string(b)
}

func (c *capped) truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped > 0
}

// Service actions accepted by Service.
// No "status": on a terminal systemctl pages it (a shell away, as root);
// the bot never needs it, and the helper refuses it.
var serviceActions = map[string]bool{"start": true, "stop": true, "restart": true, "is-active": true}

// ServiceCommand returns the command line Service runs: ssh.service_command
// with {action} and {service} replaced by the quoted, validated values.
// action is one of start, stop, restart, is-active; service is a
// config.ValidServiceName. The placeholders must not be inside quotes in
// the template.
func (f *Fleet) ServiceCommand(action, service string) (string, error) {
	return expandService(f.cfg.ServiceCommand, action, service)
}

func expandService(template, action, service string) (string, error) {
	if !serviceActions[action] {
		return "", fmt.Errorf("fleet: %w: service action %q is not one of start, stop, restart, is-active", ErrInvalid, action)
	}
	if !config.ValidServiceName(service) {
		return "", fmt.Errorf("fleet: %w: service name %q (letters, digits and @._- only, starting with a letter or digit)", ErrInvalid, service)
	}
	qa, err := Quote(action)
	if err != nil {
		return "", err
	}
	qs, err := Quote(service)
	if err != nil {
		return "", err
	}
	return strings.NewReplacer("{action}", qa, "{service}", qs).Replace(template), nil
}

// Service runs `HELPER service ACTION SERVICE` on host for one service
// when ssh.helper is set, else ssh.service_command (default "sudo
// systemctl {action} {service}"). As with Run, a non-zero exit (an
// inactive service for is-active, a failed start) is in the Result, not an
// error.
func (f *Fleet) Service(ctx context.Context, host, action, service string) (Result, error) {
	line, err := f.ServiceCommand(action, service)
	if err != nil {
		return Result{ExitCode: -1}, fmt.Errorf("fleet: %s: %w", f.label(host), err)
	}
	if f.UsesHelper() {
		return f.Run(ctx, host, f.Helper("service", action, service), RunOptions{})
	}
	return f.runLine(ctx, host, line, line, RunOptions{})
}

// UsesHelper reports whether ssh.helper is set: every privileged step then
// runs as Helper's argv.
func (f *Fleet) UsesHelper() bool { return len(strings.Fields(f.cfg.Helper)) > 0 }

// Helper returns the argv that runs one privileged step through ssh.helper
// (for example "sudo -n /usr/local/sbin/kojibot-helper"): its words, then
// action and args. Run quotes every element. It is meaningful only when
// UsesHelper.
func (f *Fleet) Helper(action string, args ...string) []string {
	argv := strings.Fields(f.cfg.Helper)
	argv = append(argv, action)
	return append(argv, args...)
}
