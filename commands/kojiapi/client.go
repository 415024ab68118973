package kojiapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"

	"github.com/fedora-infra/kojibot/commands/kojiapi/xmlrpc"

	"github.com/fedora-infra/kojibot/acl"
)

// The values of Options.Auth (koji.hub.auth).
const (
	AuthKerberos    = "kerberos"
	AuthCertificate = "certificate"
)

// Defaults used when Options leaves a value at zero.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultIdleTimeout = 5 * time.Minute
)

// maxAnswer bounds the size of an answer read from the hub.
const maxAnswer = 64 << 20

// Errors, matched with errors.Is. Their texts name no URL, host or port:
// they may reach a channel.
var (
	// ErrNotAnswering means the hub could not be reached, or did not
	// answer within the call's deadline.
	ErrNotAnswering = errors.New("the Koji hub is not answering")
	// ErrOutcomeUnknown means a write was sent but its answer was lost
	// (the connection broke, the deadline passed) and no check could say
	// whether it took effect: the change may or may not have been made.
	ErrOutcomeUnknown = errors.New("the Koji hub's answer was lost: the change may or may not have been made")
	// ErrLogin means the hub refused to open a session.
	ErrLogin = errors.New("cannot log in to the Koji hub")
	// ErrClosed means the Client was closed.
	ErrClosed = errors.New("the Koji hub client is closed")
)

// Options configures New.
type Options struct {
	// URL is the hub's XML-RPC endpoint (koji.hub.url), e.g.
	// https://koji.fedoraproject.org/kojihub; logins go to URL/ssllogin.
	URL string
	// CAFile (koji.hub.ca_file) is a PEM bundle of the CAs trusted for
	// the hub's TLS certificate; empty means the system's.
	CAFile string
	// Auth (koji.hub.auth) is AuthKerberos, AuthCertificate, or "" for
	// no login: anonymous calls only (listHosts, getHost...).
	Auth string
	// Principal and Keytab (koji.hub.principal, koji.hub.keytab) are the
	// Kerberos identity; an empty Principal means the keytab's first.
	Principal string
	Keytab    string
	// Krb5Conf is the Kerberos configuration (acl.krb5_conf).
	Krb5Conf string
	// CertFile (koji.hub.cert_file) is a PEM file with the client
	// certificate and its key, for AuthCertificate.
	CertFile string
	// ActAsCaller (koji.hub.act_as_caller) makes As(user) log in with
	// proxyuser = user; without it As returns the bot's own session.
	ActAsCaller bool
	// Timeout bounds every HTTP exchange with the hub (a call, a login);
	// zero means DefaultTimeout.
	Timeout time.Duration
	// IdleTimeout is how long a caller's session (ActAsCaller) is kept
	// unused before it is logged out; zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Logger receives logins, lost sessions and the details of failures
	// (which the errors leave out); nil discards.
	Logger *slog.Logger
}

// Client calls the hub. It keeps one HTTP client (keep-alive), the bot's
// session, and with ActAsCaller one session per caller. Its methods are
// safe for concurrent use; calls on one session are sent one at a time,
// so that the hub sees its call numbers in order.
type Client struct {
	opts     Options
	endpoint string
	login    string
	http     *http.Client
	krb      *acl.Kerberos
	log      *slog.Logger
	version  atomic.Value // string: the last Koji-Version header seen

	mu      sync.Mutex
	own     *session
	callers map[string]*session
	closed  bool
	bg      sync.WaitGroup
}

// session is one Koji session: the bot's (user "") or a caller's.
type session struct {
	user string // the proxyuser, "" for the bot's own

	// mu is held for a whole exchange with the hub: calls on a session
	// go one at a time.
	mu      sync.Mutex
	id      int64 // 0: not logged in
	key     string
	callnum int64
	used    time.Time // guarded by Client.mu
}

// New returns a client of the hub of opts. It reads the CA bundle and
// the certificate, but does not contact the hub: the first call logs in.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("kojihub: the hub URL is not an http(s) URL")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kojihub: the CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("kojihub: the CA bundle holds no PEM certificate")
		}
		tlsConf.RootCAs = pool
	}
	c := &Client{opts: opts, log: log, callers: map[string]*session{}, own: &session{}}
	switch opts.Auth {
	case "":
		c.own = nil
	case AuthCertificate:
		if opts.CertFile == "" {
			return nil, errors.New("kojihub: certificate login needs a certificate file")
		}
		pem, err := os.ReadFile(opts.CertFile)
		if err != nil {
			return nil, fmt.Errorf("kojihub: the certificate file: %w", err)
		}
		cert, err := tls.X509KeyPair(pem, pem)
		if err != nil {
			// X509KeyPair's errors describe the layout, not the key.
			return nil, fmt.Errorf("kojihub: the certificate file: %w", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	case AuthKerberos:
		krb, err := acl.NewKerberos(acl.KerberosOptions{Keytab: opts.Keytab, Principal: opts.Principal,
			Krb5Conf: opts.Krb5Conf, Logger: log, Service: "the Koji hub"})
		if err != nil {
			return nil, fmt.Errorf("kojihub: %w", err)
		}
		c.krb = krb
	default:
		return nil, fmt.Errorf("kojihub: unknown auth %q; expected %q or %q", opts.Auth, AuthKerberos, AuthCertificate)
	}
	c.endpoint = strings.TrimSuffix(u.String(), "/")
	c.login = c.endpoint + "/ssllogin"
	c.http = &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     tlsConf,
			TLSHandshakeTimeout: opts.Timeout,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		},
		// A redirect would resend a call: never follow one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// HubVersion is the hub's Koji version from the Koji-Version header of
// its last answer, or "" before the first answer (or from a hub too old
// to send it).
func (c *Client) HubVersion() string {
	v, _ := c.version.Load().(string)
	return v
}

// Close logs out every session (each bounded by the timeout) and closes
// idle connections. Calls after Close fail with ErrClosed.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	all := make([]*session, 0, len(c.callers)+1)
	if c.own != nil {
		all = append(all, c.own)
	}
	for _, s := range c.callers {
		all = append(all, s)
	}
	clear(c.callers)
	c.mu.Unlock()
	for _, s := range all {
		c.logout(s)
	}
	c.bg.Wait()
	c.http.CloseIdleConnections()
	if c.krb != nil {
		c.krb.Close()
	}
}

// Caller makes calls in one session: the bot's own, or with ActAsCaller a
// caller's (see Client.As).
type Caller struct {
	c    *Client
	user string
}

// As returns the calls made for user, a FAS user name: with ActAsCaller
// in a session of user's (sslLogin with proxyuser=user, which the hub
// allows only to principals listed in its ProxyPrincipals or ProxyDNs),
// made when first needed; once unused for IdleTimeout it is logged out
// at the next call of any caller (or by Close), and made again when
// needed. Otherwise, or when user is "", As is the bot's own session.
func (c *Client) As(user string) *Caller {
	if !c.opts.ActAsCaller {
		user = ""
	}
	return &Caller{c: c, user: user}
}

// Call calls method in the bot's session (anonymously when Options.Auth
// is empty); see Caller.Call.
func (c *Client) Call(ctx context.Context, method string, args ...any) (any, error) {
	return c.As("").Call(ctx, method, args...)
}

// CallWrite calls method in the bot's session; see Caller.CallWrite.
func (c *Client) CallWrite(ctx context.Context, check Check, method string, args ...any) (any, error) {
	return c.As("").CallWrite(ctx, check, method, args...)
}

// Check tells whether the effect of a write is already there (the host
// has the capacity, the build is tagged), reading it from the hub. A
// check that needs a result of the write (tagBuild's task id) finds it
// and keeps it itself: CallWrite then returns nil.
type Check func(ctx context.Context) (done bool, err error)

// Call calls method with args and returns the hub's answer: nil, bool,
// int64, float64, string, []any or map[string]any. A trailing Kwargs
// sends keyword arguments. A fault is a *Fault (see IsFault).
//
// Call is for reads, calls that change nothing: it is sent again (with a
// new call number) after a lost session, once logged in again, and after
// an answer lost on the way (a connection cut, a garbled reply). Send
// writes with CallWrite.
func (k *Caller) Call(ctx context.Context, method string, args ...any) (any, error) {
	return k.c.do(ctx, k.user, false, nil, method, args)
}

// CallWrite calls method, a write (editHost, tagBuild...), and never
// sends it twice unless that is known to be harmless:
//
//   - after a lost session (AuthExpired, or a session the hub does not
//     know) it logs in again once and resends: the hub checks the session
//     before it runs the method, so the first call did nothing; check,
//     when not nil, is asked first all the same;
//   - after a lost answer (the request was sent, the reply never came
//     whole) it asks check: done means the effect is there and CallWrite
//     returns nil, nil; not done sends the call once more; a nil check, or
//     a check that fails, gives ErrOutcomeUnknown;
//   - a call that passed its deadline is not resent (the hub may still be
//     at it): ErrNotAnswering, wrapping ErrOutcomeUnknown.
//
// Every sending has a new call number.
func (k *Caller) CallWrite(ctx context.Context, check Check, method string, args ...any) (any, error) {
	return k.c.do(ctx, k.user, true, check, method, args)
}

// attemptResult is how an exchange with the hub failed.
type attemptResult int

const (
	attemptOK      attemptResult = iota
	attemptFailed                // a definite answer: a fault, an HTTP error before the hub ran anything
	attemptNotSent               // the request did not reach the hub
	attemptLost                  // the request was sent, its answer lost
	attemptTimeout               // the deadline passed after the request was sent
)

func (c *Client) do(ctx context.Context, user string, write bool, check Check, method string, args []any) (any, error) {
	body, err := xmlrpc.EncodeCall(method, args)
	if err != nil {
		return nil, fmt.Errorf("kojihub: %s: %w", method, err)
	}
	s, err := c.session(user)
	if err != nil {
		return nil, err
	}
	relogged, resent := false, false
	for {
		v, how, err := c.attempt(ctx, s, method, body)
		switch {
		case how == attemptOK:
			return v, nil
		case how == attemptFailed && s != nil && sessionLost(err) && !relogged:
			relogged = true
			c.log.Info("kojihub: the session was lost, logging in again", "method", method, "user", userOf(s), "fault", err)
			if write && check != nil {
				done, cerr := check(ctx)
				if cerr != nil {
					return nil, fmt.Errorf("%w (%w)", ErrOutcomeUnknown, cerr)
				}
				if done {
					return nil, nil
				}
			}
			continue
		case how == attemptNotSent && !resent && ctx.Err() == nil:
			// Never reached the hub (typically a kept-alive connection
			// that the hub's Apache closed when it restarted): safe to
			// send again, reads and writes alike, on a new connection.
			resent = true
			c.log.Info("kojihub: the request did not reach the hub, sending it again", "method", method, "err", err)
			continue
		case how == attemptLost && !resent && ctx.Err() == nil:
			resent = true
			if !write {
				c.log.Info("kojihub: the answer was lost, asking again", "method", method, "err", err)
				continue
			}
			if check == nil {
				c.log.Warn("kojihub: the answer to a write was lost", "method", method, "err", err)
				return nil, ErrOutcomeUnknown
			}
			done, cerr := check(ctx)
			if cerr != nil {
				c.log.Warn("kojihub: the answer to a write was lost and the check failed", "method", method, "err", err, "check", cerr)
				return nil, fmt.Errorf("%w (%w)", ErrOutcomeUnknown, cerr)
			}
			if done {
				c.log.Info("kojihub: the answer to a write was lost; the check found it done", "method", method)
				return nil, nil
			}
			c.log.Info("kojihub: the answer to a write was lost; the check found it not done, sending it again", "method", method)
			continue
		case how == attemptLost && write:
			return nil, ErrOutcomeUnknown
		case how == attemptTimeout && write:
			return nil, fmt.Errorf("%w (%w)", ErrNotAnswering, ErrOutcomeUnknown)
		}
		return nil, err
	}
}

func userOf(s *session) string {
	if s.user == "" {
		return "(the bot)"
	}
	return s.user
}

// session returns the session of user: nil for anonymous calls, the
// bot's, or the caller's (created, not yet logged in). It also drops the
// callers' sessions idle for longer than IdleTimeout.
func (c *Client) session(user string) (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	now := time.Now()
	for name, s := range c.callers {
		if name != user && now.Sub(s.used) > c.opts.IdleTimeout {
			delete(c.callers, name)
			c.log.Debug("kojihub: dropping an idle session", "user", name)
			c.bg.Add(1)
			go func() { defer c.bg.Done(); c.logout(s) }()
		}
	}
	if c.own == nil {
		if user != "" {
			return nil, errors.New("kojihub: acting as a caller needs a login (koji.hub.auth)")
		}
		return nil, nil
	}
	if user == "" {
		return c.own, nil
	}
	s := c.callers[user]
	if s == nil {
		s = &session{user: user}
		c.callers[user] = s
	}
	s.used = now
	return s, nil
}

// attempt sends one call in session s (nil: anonymously), logging in
// first when s has no session. A session-lost fault forgets the session,
// so that the next attempt logs in again.
func (c *Client) attempt(ctx context.Context, s *session, method string, body []byte) (any, attemptResult, error) {
	if s == nil {
		return c.exchange(ctx, c.endpoint, method, body, nil)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.id == 0 {
		if err := c.loginLocked(ctx, s); err != nil {
			return nil, attemptFailed, err
		}
	}
	hdr := http.Header{}
	hdr.Set("Koji-Session-Id", strconv.FormatInt(s.id, 10))
	hdr.Set("Koji-Session-Key", s.key)
	hdr.Set("Koji-Session-Callnum", strconv.FormatInt(s.callnum, 10))
	// The number is spent whatever happens to the call.
	s.callnum++
	v, how, err := c.exchange(ctx, c.endpoint, method, body, hdr)
	if how == attemptFailed && sessionLost(err) {
		s.id, s.key, s.callnum = 0, "", 0
	}
	return v, how, err
}

// exchange POSTs body to target and decodes the answer. Its errors name
// no URL or address; their details are logged.
func (c *Client) exchange(ctx context.Context, target, method string, body []byte, hdr http.Header) (any, attemptResult, error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, attemptFailed, fmt.Errorf("kojihub: %s: %w", method, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "kojibot")
	if target == c.login && c.krb != nil {
		if err := c.krb.Authenticate(req); err != nil {
			reason, _ := acl.KerberosReason(err)
			if reason == "" {
				reason = "no ticket"
			}
			return nil, attemptFailed, fmt.Errorf("%w (Kerberos: %s)", ErrLogin, reason)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		how, err := c.transportFailure(ctx, actx, method, err, wrote.Load())
		return nil, how, err
	}
	defer resp.Body.Close()
	if v := resp.Header.Get("Koji-Version"); v != "" && v != c.HubVersion() {
		c.version.Store(v)
		c.log.Info("kojihub: the hub's version", "koji_version", v)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		how, err := c.transportFailure(ctx, actx, method, err, true)
		return nil, how, err
	}
	if len(data) > maxAnswer {
		return nil, attemptFailed, fmt.Errorf("kojihub: %s: the hub's answer is larger than %d MiB", method, maxAnswer>>20)
	}
	if resp.StatusCode != http.StatusOK {
		c.log.Warn("kojihub: HTTP error", "method", method, "status", resp.Status, "body", reply.Cut(string(data), 200))
		err := fmt.Errorf("the Koji hub answered %s to %s", resp.Status, method)
		switch {
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			// Apache refused the request before the hub saw it.
			return nil, attemptFailed, fmt.Errorf("%w: %s", ErrLogin, err.Error())
		case resp.StatusCode >= 500:
			// The hub may have run the call.
			return nil, attemptLost, err
		}
		return nil, attemptFailed, err
	}
	v, err := xmlrpc.DecodeResponse(bytes.NewReader(data))
	if err != nil {
		var f *Fault
		if errors.As(err, &f) {
			return nil, attemptFailed, f
		}
		c.log.Warn("kojihub: a malformed answer", "method", method, "err", err)
		return nil, attemptLost, fmt.Errorf("the Koji hub sent a malformed answer to %s", method)
	}
	return v, attemptOK, nil
}

// transportFailure classifies a failed exchange and returns an error that
// names no URL or address (the detail goes to the log).
func (c *Client) transportFailure(ctx, actx context.Context, method string, err error, sent bool) (attemptResult, error) {
	c.log.Warn("kojihub: the hub did not answer", "method", method, "sent", sent, "err", err)
	if ctx.Err() != nil {
		// The caller gave up.
		return attemptFailed, fmt.Errorf("kojihub: %s: %w", method, ctx.Err())
	}
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var cerr *tls.CertificateVerificationError
	if errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
		return attemptFailed, errors.New("the Koji hub's TLS certificate is not trusted (koji.hub.ca_file)")
	}
	switch {
	case !sent:
		return attemptNotSent, ErrNotAnswering
	case actx.Err() != nil:
		return attemptTimeout, ErrNotAnswering
	}
	return attemptLost, fmt.Errorf("%w (the connection broke during %s)", ErrNotAnswering, method)
}
