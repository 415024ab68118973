package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// statvfsExtension is the OpenSSH SFTP extension that answers statvfs(3).
const statvfsExtension = "statvfs@openssh.com"

// Reasons a disk check falls back to df, as ObserveDiskFallback reports
// them.
const (
	// FallbackNoSubsystem: the server refused the sftp subsystem (no
	// Subsystem line in its sshd_config, or it failed to start).
	FallbackNoSubsystem = "no-sftp-subsystem"
	// FallbackNoExtension: the SFTP server lacks statvfs@openssh.com.
	FallbackNoExtension = "no-statvfs-extension"
	// FallbackRefused: the server refused a new session for the SFTP
	// subsystem this time (MaxSessions); not remembered.
	FallbackRefused = "session-refused"
)

// mountsTTL is how long a connection's SFTP session trusts the mount
// points it read from /proc/self/mounts before reading them again.
const mountsTTL = 10 * time.Minute

// mountsMax bounds what is read of /proc/self/mounts.
const mountsMax = 4 << 20

// ObserveDiskFallback makes the Fleet report every DiskUsage that ran df
// instead of reading statvfs through the host's SFTP session, with the
// reason (FallbackNoSubsystem, FallbackNoExtension, FallbackRefused), for
// metrics. Call it before the Fleet is used.
func (f *Fleet) ObserveDiskFallback(fn func(host, reason string)) { f.onFallback = fn }

// sftpConn is a connection's persistent SFTP session.
type sftpConn struct {
	sess   *ssh.Session
	client *sftp.Client

	mu       sync.Mutex
	mounts   map[string]mountOf // path asked → its mount; guarded by mu
	mountsAt time.Time          // when /proc/self/mounts was read
}

// mountOf is the mount holding a path: its mount point and source (df's
// Filesystem column).
type mountOf struct{ mount, source string }

// close ends the SFTP session. Its SFTP client's reader stops when the
// server acknowledges the close or the connection ends (a hung server is
// dropped by the keepalive probe), so that wait happens in the background.
func (s *sftpConn) close() {
	_ = s.sess.Close()
	go func() { _ = s.client.Close() }()
}

// sessionCloser closes the SSH session under an SFTP client.
type sessionCloser struct {
	io.Writer
	sess *ssh.Session
}

// Close implements io.Closer.
func (c sessionCloser) Close() error { return c.sess.Close() }

// errSFTPLost means the SFTP session ended (the subsystem died, or the
// connection under it): open it again.
var errSFTPLost = errors.New("sftp session lost")

// statvfsUsage reads paths through host's SFTP session. ok is false when
// the caller must run df instead (the reason was reported).
func (f *Fleet) statvfsUsage(ctx context.Context, host string, paths []string) (usages []Usage, ok bool, err error) {
	label := f.label(host)
	for attempt := 0; ; attempt++ {
		l, _, err := f.connect(ctx, host)
		if err != nil {
			return nil, true, err
		}
		sc, reason, err := f.sftpOf(ctx, l, label)
		switch {
		case reason != "":
			if f.onFallback != nil {
				f.onFallback(host, reason)
			}
			return nil, false, nil
		case err == nil:
			usages, err = f.statPaths(ctx, l, sc, label, paths)
			if !errors.Is(err, errSFTPLost) {
				return usages, true, err
			}
			l.dropSFTP(sc)
		case ctx.Err() != nil:
			return nil, true, ctxError(ctx, label, "opening sftp session", 0)
		default:
			// The connection itself failed: drop it so the next try
			// redials.
			l.close()
			select {
			case <-l.dead:
			case <-ctx.Done():
				return nil, true, ctxError(ctx, label, "opening sftp session", 0)
			}
		}
		if attempt > 0 {
			return nil, true, fmt.Errorf("fleet: %s: %w: sftp: %w", label, ErrUnreachable, err)
		}
		f.log.Info("sftp session lost, opening it again", "host", label, "err", err)
	}
}

// sftpOf returns l's SFTP session, opening it when there is none. reason
// is not empty when disks on l must be read with df.
func (f *Fleet) sftpOf(ctx context.Context, l *link, label string) (*sftpConn, string, error) {
	if sc, reason := l.sftpState(); sc != nil || reason != "" {
		return sc, reason, nil
	}
	select {
	case l.sftpOpen <- struct{}{}:
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	defer func() { <-l.sftpOpen }()
	if sc, reason := l.sftpState(); sc != nil || reason != "" {
		return sc, reason, nil
	}

	// Opening is bounded like a dial, whatever the caller's deadline.
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ConnectTimeout)
	defer cancel()
	sess, err := f.openSession(ctx, l, label)
	if err != nil {
		var refused *ssh.OpenChannelError
		if errors.As(err, &refused) {
			return nil, FallbackRefused, nil
		}
		return nil, "", err
	}
	sc, reason, err := f.startSFTP(ctx, l, sess, label)
	if err != nil || reason != "" {
		_ = sess.Close()
		if reason != "" {
			f.log.Info("no statvfs over sftp: reading disks with df", "host", label, "reason", reason)
			l.sftpMu.Lock()
			l.noSFTP = reason
			l.sftpMu.Unlock()
		}
		return nil, reason, err
	}
	l.sftpMu.Lock()
	if !l.alive() {
		l.sftpMu.Unlock()
		sc.close()
		return nil, "", fmt.Errorf("connection closed")
	}
	l.sftp = sc
	l.sftpMu.Unlock()
	return sc, "", nil
}

// startSFTP starts the sftp subsystem on sess and checks that it offers
// statvfs, within ctx.
func (f *Fleet) startSFTP(ctx context.Context, l *link, sess *ssh.Session, label string) (*sftpConn, string, error) {
	type started struct {
		sc     *sftpConn
		reason string
		err    error
	}
	ch := make(chan started, 1)
	go func() {
		var s started
		s.sc, s.reason, s.err = openSFTP(sess)
		ch <- s
	}()
	select {
	case s := <-ch:
		return s.sc, s.reason, s.err
	case <-ctx.Done():
		_ = sess.Close() // ends the handshake; its result is dropped
		go f.probe(l, label)
		return nil, "", ctx.Err()
	}
}

// openSFTP asks for the sftp subsystem on sess and does the SFTP
// handshake.
func openSFTP(sess *ssh.Session) (*sftpConn, string, error) {
	sess.Stderr = io.Discard
	w, err := sess.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	r, err := sess.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		// The host refused the subsystem (x/crypto/ssh gives the refusal
		// no error type of its own: anything but a broken connection).
		if !brokenConnection(err) {
			return nil, FallbackNoSubsystem, nil
		}
		return nil, "", err
	}
	client, err := sftp.NewClientPipe(r, sessionCloser{w, sess})
	if err != nil {
		return nil, "", fmt.Errorf("sftp handshake: %w", err)
	}
	if _, ok := client.HasExtension(statvfsExtension); !ok {
		_ = client.Close()
		return nil, FallbackNoExtension, nil
	}
	return &sftpConn{sess: sess, client: client, mounts: map[string]mountOf{}}, "", nil
}

// sftpState returns l's SFTP session, or why there is none.
func (l *link) sftpState() (*sftpConn, string) {
	l.sftpMu.Lock()
	defer l.sftpMu.Unlock()
	return l.sftp, l.noSFTP
}

// dropSFTP forgets and closes sc when it is still l's session.
func (l *link) dropSFTP(sc *sftpConn) {
	l.sftpMu.Lock()
	if l.sftp == sc {
		l.sftp = nil
	}
	l.sftpMu.Unlock()
	sc.close()
}

// statPaths reads every path's statvfs and mount at once through sc,
// within ctx and ssh.command_timeout (as df would run). When that ends
// first the session is dropped (a server that does not answer in time is
// not asked again on it).
func (f *Fleet) statPaths(ctx context.Context, l *link, sc *sftpConn, label string, paths []string) ([]Usage, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.CommandTimeout)
	defer cancel()
	type answer struct {
		st  *sftp.StatVFS
		err error
	}
	answers := make([]answer, len(paths))
	var mounts []mountOf
	var mountErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i, p := range paths {
			wg.Go(func() { answers[i].st, answers[i].err = sc.client.StatVFS(p) })
		}
		mounts, mountErr = sc.mountsOf(paths)
		wg.Wait()
	}()
	select {
	case <-done:
	case <-ctx.Done():
		l.dropSFTP(sc)
		go f.probe(l, label)
		return nil, ctxError(ctx, label, "statvfs", f.cfg.CommandTimeout)
	}

	var usages []Usage
	var missing, why []string
	for i, a := range answers {
		var status *sftp.StatusError
		switch {
		case a.err == nil:
			u := usageOf(a.st)
			u.Path = paths[i]
			if mountErr == nil {
				u.Mount, u.Filesystem = mounts[i].mount, mounts[i].source
			}
			usages = append(usages, u)
		case errors.Is(a.err, fs.ErrNotExist):
			missing, why = append(missing, paths[i]), append(why, "No such file or directory")
		case errors.Is(a.err, fs.ErrPermission):
			missing, why = append(missing, paths[i]), append(why, "Permission denied")
		case errors.As(a.err, &status) && status.FxCode() == sftp.ErrSSHFxOpUnsupported:
			// Advertised but refused: read with df on this connection.
			l.sftpMu.Lock()
			l.noSFTP = FallbackNoExtension
			l.sftpMu.Unlock()
			return nil, fmt.Errorf("%w: statvfs: %w", errSFTPLost, a.err)
		case errors.As(a.err, &status):
			missing, why = append(missing, paths[i]), append(why, status.Error())
		default:
			return nil, fmt.Errorf("%w: statvfs %s: %w", errSFTPLost, paths[i], a.err)
		}
	}
	if mountErr != nil && len(usages) > 0 {
		f.log.Debug("could not read the mount table over sftp", "host", label, "err", mountErr)
	}
	if len(missing) > 0 {
		parts := make([]string, len(missing))
		for i := range missing {
			parts[i] = missing[i] + ": " + why[i]
		}
		return usages, fmt.Errorf("fleet: %s: statvfs: cannot read %s (%s)", label, strings.Join(missing, ", "), strings.Join(parts, "; "))
	}
	return usages, nil
}

// usageOf turns a statvfs answer into df's figures: size f_blocks, used
// f_blocks - f_bfree and available f_bavail, in fragments (f_frsize), and
// the percentage used of what users can have, as df -P -B1 reports them.
func usageOf(st *sftp.StatVFS) Usage {
	unit := st.Frsize
	if unit == 0 {
		unit = st.Bsize
	}
	var u Usage
	u.Size = st.Blocks * unit
	if st.Blocks > st.Bfree {
		u.Used = (st.Blocks - st.Bfree) * unit
	}
	u.Avail = st.Bavail * unit
	if u.Used+u.Avail > 0 {
		u.Percent = float64(u.Used) * 100 / float64(u.Used+u.Avail)
	}
	return u
}

// mountsOf returns the mount holding each path: the longest mount point
// of /proc/self/mounts (as the SFTP server sees it) that contains the
// path. It reads the mount table when a path was not seen before or the
// last reading is older than mountsTTL.
func (s *sftpConn) mountsOf(paths []string) ([]mountOf, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]mountOf, len(paths))
	fresh := time.Since(s.mountsAt) < mountsTTL
	for i, p := range paths {
		m, ok := s.mounts[p]
		if !ok || !fresh {
			return s.readMounts(paths)
		}
		out[i] = m
	}
	return out, nil
}

// readMounts reads /proc/self/mounts and resolves paths against it;
// s.mu is held.
func (s *sftpConn) readMounts(paths []string) ([]mountOf, error) {
	f, err := s.client.Open("/proc/self/mounts")
	if err != nil {
		return nil, fmt.Errorf("/proc/self/mounts: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, mountsMax))
	if err != nil {
		return nil, fmt.Errorf("/proc/self/mounts: %w", err)
	}
	table := parseMounts(string(b))
	clear(s.mounts)
	out := make([]mountOf, len(paths))
	for i, p := range paths {
		out[i] = table.holding(p)
		s.mounts[p] = out[i]
	}
	s.mountsAt = time.Now()
	return out, nil
}

// mountTable is the mount point → source of each mount, the last one
// listed at a mount point winning (it is the one on top).
type mountTable map[string]string

// parseMounts reads /proc/mounts lines: source, mount point (with \040
// style octal escapes), type, options, 0, 0.
func parseMounts(text string) mountTable {
	t := mountTable{}
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		t[UnescapeMountField(fields[1])] = UnescapeMountField(fields[0])
	}
	return t
}

// holding returns the mount whose mount point is the longest prefix of p
// (lexically, after cleaning it).
func (t mountTable) holding(p string) mountOf {
	for dir := path.Clean(p); ; dir = path.Dir(dir) {
		if src, ok := t[dir]; ok {
			return mountOf{mount: dir, source: src}
		}
		if dir == "/" || dir == "." {
			return mountOf{}
		}
	}
}

// UnescapeMountField undoes the kernel's \ooo escapes of space, tab,
// newline and backslash in a /proc/mounts field: the one decoder of those
// fields, for the disk checks and the clean-up alike.
func UnescapeMountField(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
