// Package fleet runs kojibot's remote actions — commands, service control,
// df — on the hub, the builders and the xen hosts over SSH
// (golang.org/x/crypto/ssh), with strict host key checking, cached and
// kept-alive connections, deadlines, and remote processes that stop when
// their context ends.
package fleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/fedora-infra/kojibot/config"
)

const (
	// DefaultKeepalive is how often an idle cached connection is probed
	// with a keepalive@openssh.com request.
	DefaultKeepalive = 30 * time.Second
	// maxSessions bounds the sessions open at once on one connection,
	// below OpenSSH's MaxSessions default of 10.
	maxSessions = 8
)

// Fleet runs commands on the configured hosts. It caches one SSH connection
// per host (and one to the jump host), probes idle connections with
// keepalives and redials dead ones. A Fleet is safe for concurrent use;
// Close releases it.
type Fleet struct {
	cfg       config.SSH
	hosts     map[string]config.Host
	log       *slog.Logger
	signer    ssh.Signer // from cfg.KeyFile; nil means ssh-agent
	agentSock string
	jumpAddr  string
	probeKey  ssh.PublicKey
	keepalive time.Duration

	mu      sync.Mutex
	entries map[string]*entry
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup

	dials atomic.Int64 // connections attempted, for tests and metrics

	onDial     func(host string, d time.Duration, err error)
	onFallback func(host, reason string)

	// The parsed known_hosts, shared by every dial (each connection keeps
	// its callback: a copy per connection grows as hosts²), and the file
	// it was read from.
	khMu   sync.Mutex
	kh     ssh.HostKeyCallback
	khStat os.FileInfo
}

// knownHosts returns the parsed ssh.known_hosts, reading it again when the
// file changed (another file, size or modification time) since it was
// last read, so that an edit takes effect at the next dial.
func (f *Fleet) knownHosts() (ssh.HostKeyCallback, error) {
	st, err := os.Stat(f.cfg.KnownHosts)
	if err != nil {
		return nil, err
	}
	f.khMu.Lock()
	defer f.khMu.Unlock()
	if f.kh != nil && os.SameFile(st, f.khStat) && st.Size() == f.khStat.Size() && st.ModTime().Equal(f.khStat.ModTime()) {
		return f.kh, nil
	}
	kh, err := knownhosts.New(f.cfg.KnownHosts)
	if err != nil {
		return nil, err
	}
	f.kh, f.khStat = kh, st
	return kh, nil
}

// ObserveDials makes the Fleet report every connection attempt (the host,
// how long the dial and handshake took, and its error) to fn, for metrics.
// Call it before the Fleet is used.
func (f *Fleet) ObserveDials(fn func(host string, d time.Duration, err error)) { f.onDial = fn }

// entry is the cache slot of one destination.
type entry struct {
	lock     chan struct{} // held (1-buffered) while dialling
	link     *link         // guarded by Fleet.mu; nil when none
	sessions chan struct{} // bounds concurrent sessions
}

// link is one live SSH connection.
type link struct {
	client *ssh.Client
	dead   chan struct{} // closed when the connection has ended
	once   sync.Once

	// The connection's SFTP session, for statvfs (statvfs.go): opened on
	// first use, at most one at a time (sftpOpen is held while opening),
	// closed with the connection.
	sftpOpen chan struct{}
	sftpMu   sync.Mutex
	sftp     *sftpConn // guarded by sftpMu; nil when none
	noSFTP   string    // guarded by sftpMu; why this connection reads disks with df ("" when it need not)
}

func newLink(client *ssh.Client) *link {
	return &link{client: client, dead: make(chan struct{}), sftpOpen: make(chan struct{}, 1)}
}

// close closes the connection and its SFTP session.
func (l *link) close() {
	l.once.Do(func() {
		_ = l.client.Close()
		l.sftpMu.Lock()
		s := l.sftp
		l.sftp = nil
		l.sftpMu.Unlock()
		if s != nil {
			s.close()
		}
	})
}

func (l *link) alive() bool {
	select {
	case <-l.dead:
		return false
	default:
		return true
	}
}

// New checks cfg and returns a Fleet for hosts (name → address). cfg is a
// validated ssh: section (config.Default holds the defaults): New fills in
// nothing. It reads cfg.KeyFile now, or, when that is empty, expects an
// ssh-agent at $SSH_AUTH_SOCK; it connects to nothing until a host is
// used. log may be nil.
func New(cfg config.SSH, hosts map[string]config.Host, log *slog.Logger) (*Fleet, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.User == "" {
		return nil, errors.New("fleet: ssh.user is empty")
	}
	if cfg.KnownHosts == "" {
		return nil, errors.New("fleet: ssh.known_hosts is empty: host keys are always checked")
	}
	if _, err := knownhosts.New(cfg.KnownHosts); err != nil {
		return nil, fmt.Errorf("fleet: ssh.known_hosts: %w", err)
	}
	if !strings.Contains(cfg.ServiceCommand, "{action}") || !strings.Contains(cfg.ServiceCommand, "{service}") {
		return nil, fmt.Errorf("fleet: ssh.service_command %q must contain {action} and {service}", cfg.ServiceCommand)
	}
	f := &Fleet{
		cfg:       cfg,
		hosts:     make(map[string]config.Host, len(hosts)),
		log:       log,
		keepalive: DefaultKeepalive,
		entries:   make(map[string]*entry),
		done:      make(chan struct{}),
	}
	for name, h := range hosts {
		if h.Address == "" {
			return nil, fmt.Errorf("fleet: host %s has no address", name)
		}
		h.Address = withPort(h.Address)
		f.hosts[name] = h
	}
	if cfg.KeyFile != "" {
		pem, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("fleet: ssh.key_file: %w", err)
		}
		f.signer, err = ssh.ParsePrivateKey(pem)
		if err != nil {
			var pp *ssh.PassphraseMissingError
			if errors.As(err, &pp) {
				return nil, fmt.Errorf("fleet: ssh.key_file %s is passphrase-protected: load it into ssh-agent and leave key_file empty", cfg.KeyFile)
			}
			return nil, fmt.Errorf("fleet: ssh.key_file %s: %w", cfg.KeyFile, err)
		}
	} else {
		f.agentSock = os.Getenv("SSH_AUTH_SOCK")
		if f.agentSock == "" {
			return nil, errors.New("fleet: ssh.key_file is empty and SSH_AUTH_SOCK is not set: no key to log in with")
		}
	}
	if cfg.JumpHost != "" {
		if h, ok := f.hosts[cfg.JumpHost]; ok {
			f.jumpAddr = h.Address
		} else {
			f.jumpAddr = withPort(cfg.JumpHost)
		}
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if f.probeKey, err = ssh.NewPublicKey(pub); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return f, nil
}

// withPort adds the SSH port to an address that has none.
func withPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), "22")
}

// Close drops every cached connection and makes later calls fail with
// ErrClosed. Commands still running are cut off.
func (f *Fleet) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	close(f.done)
	var links []*link
	for _, e := range f.entries {
		if e.link != nil {
			links = append(links, e.link)
		}
	}
	f.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	f.wg.Wait()
}

// Hosts returns the names of the configured hosts.
func (f *Fleet) Hosts() []string {
	names := make([]string, 0, len(f.hosts))
	for n := range f.hosts {
		names = append(names, n)
	}
	return names
}

// label names a host in errors: "name (address)".
func (f *Fleet) label(name string) string {
	if h, ok := f.hosts[name]; ok {
		return name + " (" + h.Address + ")"
	}
	return name
}

// entry returns the cache slot for key, creating it.
func (f *Fleet) entry(key string) (*entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	e := f.entries[key]
	if e == nil {
		e = &entry{lock: make(chan struct{}, 1), sessions: make(chan struct{}, maxSessions)}
		f.entries[key] = e
	}
	return e, nil
}

// connect returns the cached live connection to host, dialling it (through
// the jump host when one is configured) when there is none.
func (f *Fleet) connect(ctx context.Context, host string) (*link, *entry, error) {
	h, ok := f.hosts[host]
	if !ok {
		return nil, nil, fmt.Errorf("fleet: %s: %w", host, ErrUnknownHost)
	}
	via := ""
	if f.jumpAddr != "" && h.Address != f.jumpAddr {
		via = f.jumpAddr
	}
	return f.cached(ctx, "host "+host, f.label(host), h.Address, via)
}

// cached returns the live connection in the slot key, or dials addr (via
// the jump address when not empty) and stores it.
func (f *Fleet) cached(ctx context.Context, key, label, addr, via string) (*link, *entry, error) {
	e, err := f.entry(key)
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: %s: %w", label, err)
	}
	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctxError(ctx, label, "waiting for connection", f.cfg.ConnectTimeout)
	}
	defer func() { <-e.lock }()

	f.mu.Lock()
	l := e.link
	f.mu.Unlock()
	if l != nil && l.alive() {
		return l, e, nil
	}

	var jump *ssh.Client
	if via != "" {
		jl, _, err := f.cached(ctx, "jump "+via, "jump host "+via, via, "")
		if err != nil {
			return nil, nil, fmt.Errorf("fleet: %s: through jump host: %w", label, err)
		}
		jump = jl.client
	}
	started := time.Now()
	client, err := f.dial(ctx, label, addr, jump)
	if f.onDial != nil {
		f.onDial(key, time.Since(started), err)
	}
	if err != nil {
		return nil, nil, err
	}
	l = newLink(client)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		l.close()
		return nil, nil, fmt.Errorf("fleet: %s: %w", label, ErrClosed)
	}
	e.link = l
	f.wg.Add(2)
	f.mu.Unlock()
	go f.watch(e, l, label)
	go f.keepLink(l, label)
	return l, e, nil
}

// watch waits for the connection to end, then forgets it.
func (f *Fleet) watch(e *entry, l *link, label string) {
	defer f.wg.Done()
	err := l.client.Wait()
	close(l.dead)
	f.mu.Lock()
	if e.link == l {
		e.link = nil
	}
	f.mu.Unlock()
	f.log.Debug("ssh connection closed", "host", label, "err", err)
}

// keepLink probes the connection every keepalive interval and closes it
// when a probe gets no answer within the connect timeout.
func (f *Fleet) keepLink(l *link, label string) {
	defer f.wg.Done()
	t := time.NewTicker(f.keepalive)
	defer t.Stop()
	for {
		select {
		case <-l.dead:
			return
		case <-f.done:
			return
		case <-t.C:
			if !f.probe(l, label) {
				return
			}
		}
	}
}

// probe sends one keepalive@openssh.com request; a connection that does
// not answer within the connect timeout is closed (and so redialled next
// time). It reports whether the connection answered.
func (f *Fleet) probe(l *link, label string) bool {
	answered := make(chan error, 1)
	go func() {
		_, _, err := l.client.SendRequest("keepalive@openssh.com", true, nil)
		answered <- err
	}()
	timer := time.NewTimer(f.cfg.ConnectTimeout)
	defer timer.Stop()
	select {
	case err := <-answered:
		if err == nil {
			return true
		}
		f.log.Warn("ssh keepalive failed, dropping connection", "host", label, "err", err)
	case <-timer.C:
		f.log.Warn("ssh keepalive unanswered, dropping connection", "host", label, "after", f.cfg.ConnectTimeout)
	case <-l.dead:
	}
	l.close()
	return false
}

// dial opens a TCP connection to addr (directly or through jump), checks
// the host key and logs in, all within the connect timeout.
func (f *Fleet) dial(ctx context.Context, label, addr string, jump *ssh.Client) (*ssh.Client, error) {
	f.dials.Add(1)
	dctx, cancel := context.WithTimeout(ctx, f.cfg.ConnectTimeout)
	defer cancel()
	start := time.Now()

	var nc net.Conn
	var err error
	if jump != nil {
		nc, err = jump.DialContext(dctx, "tcp", addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return nil, f.dialError(ctx, dctx, label, "connect", err)
	}

	known, err := f.knownHosts()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("fleet: %s: known_hosts: %w", label, err)
	}
	var keyErr error
	check := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if err := known(hostname, remote, key); err != nil {
			keyErr = f.hostKeyError(label, addr, key, err)
			return keyErr
		}
		return nil
	}
	signers, closeAuth, err := f.signers()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("fleet: %s: %w", label, err)
	}
	defer closeAuth()
	// offered says the handshake got as far as offering our keys: a
	// handshake that fails after that, other than by the connection
	// breaking, is the host refusing them (x/crypto/ssh gives that
	// refusal no error type of its own).
	var offered bool
	cc := &ssh.ClientConfig{
		User: f.cfg.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			offered = true
			return signers()
		})},
		HostKeyCallback:   check,
		HostKeyAlgorithms: f.knownAlgorithms(known, addr),
		Timeout:           f.cfg.ConnectTimeout,
	}

	// The handshake has no context of its own: closing the connection is
	// what stops it when the deadline passes or ctx is cancelled.
	stop := context.AfterFunc(dctx, func() { nc.Close() })
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, cc)
	if !stop() {
		if err == nil {
			conn.Close()
		}
		return nil, f.dialError(ctx, dctx, label, "ssh handshake", context.DeadlineExceeded)
	}
	if err != nil {
		nc.Close()
		switch {
		case keyErr != nil:
			f.log.Error("ssh host key check failed", "host", label, "err", keyErr)
			return nil, keyErr
		case offered && !brokenConnection(err):
			return nil, fmt.Errorf("fleet: %s: %w for user %s: %w", label, ErrAuth, f.cfg.User, err)
		}
		return nil, fmt.Errorf("fleet: %s: %w: ssh handshake: %w", label, ErrUnreachable, err)
	}
	f.log.Debug("ssh connected", "host", label, "via_jump", jump != nil, "took", time.Since(start))
	return ssh.NewClient(conn, chans, reqs), nil
}

// dialError classifies a failure to connect: the caller's cancellation,
// no answer within the connect timeout (ErrUnreachable and ErrTimeout), or
// ErrUnreachable.
func (f *Fleet) dialError(ctx, dctx context.Context, label, op string, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctxError(ctx, label, op, f.cfg.ConnectTimeout)
	case dctx.Err() != nil:
		return fmt.Errorf("fleet: %s: %w: %s: no answer within %s (%w)", label, ErrUnreachable, op, f.cfg.ConnectTimeout, ErrTimeout)
	}
	return fmt.Errorf("fleet: %s: %w: %s: %w", label, ErrUnreachable, op, err)
}

// hostKeyError turns a knownhosts failure into ErrUnknownHostKey or
// ErrHostKeyChanged, saying what the operator should do.
func (f *Fleet) hostKeyError(label, addr string, key ssh.PublicKey, err error) error {
	got := key.Type() + " " + ssh.FingerprintSHA256(key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("fleet: %s: %w: it presents %s, which %s marks @revoked; do not connect until its administrators have replaced the key",
			label, ErrHostKeyChanged, got, f.cfg.KnownHosts)
	case errors.As(err, &ke) && len(ke.Want) == 0:
		host, port, _ := net.SplitHostPort(addr)
		scan := "ssh-keyscan " + host
		if port != "22" {
			scan = "ssh-keyscan -p " + port + " " + host
		}
		return fmt.Errorf("fleet: %s: %w: it presents %s, which is not in %s; add it with `%s >> %s` after checking its fingerprint with the host's administrators",
			label, ErrUnknownHostKey, got, f.cfg.KnownHosts, scan, f.cfg.KnownHosts)
	case errors.As(err, &ke):
		var want []string
		for _, k := range ke.Want {
			want = append(want, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
		}
		return fmt.Errorf("fleet: %s: %w: it now presents %s but known_hosts has %s; the key changed — verify the new key with the host's administrators and fix %s (ssh-keygen -R %s -f %s) before retrying",
			label, ErrHostKeyChanged, got, strings.Join(want, ", "), f.cfg.KnownHosts, knownhosts.Normalize(addr), f.cfg.KnownHosts)
	}
	return fmt.Errorf("fleet: %s: %w: %w", label, ErrHostKeyChanged, err)
}

// knownAlgorithms returns the host key algorithms known_hosts has keys of
// for addr, so that the server is asked for a key type we can check (a
// server's other key types would otherwise look like a changed key). It
// returns nil for an unknown host.
func (f *Fleet) knownAlgorithms(known ssh.HostKeyCallback, addr string) []string {
	err := known(addr, &net.TCPAddr{IP: net.IPv4zero}, f.probeKey)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, s := range a {
			if !seen[s] {
				seen[s] = true
				algos = append(algos, s)
			}
		}
	}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

// signers returns what gives the keys to offer: the key file's signer, or
// the agent's keys over a connection to $SSH_AUTH_SOCK that the returned
// func closes.
func (f *Fleet) signers() (func() ([]ssh.Signer, error), func(), error) {
	if f.signer != nil {
		return func() ([]ssh.Signer, error) { return []ssh.Signer{f.signer}, nil }, func() {}, nil
	}
	c, err := net.Dial("unix", f.agentSock)
	if err != nil {
		return nil, nil, fmt.Errorf("ssh-agent at SSH_AUTH_SOCK: %w", err)
	}
	return agent.NewClient(c).Signers, func() { c.Close() }, nil
}

// brokenConnection says whether err is the connection itself failing (closed,
// reset, timed out) rather than the other side refusing a request on it.
func brokenConnection(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
