package messaging

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/config"
)

// Outbox is where messages wait for the broker: the state store
// (*state.Store), or MemoryOutbox without one.
type Outbox interface {
	Enqueue(ctx context.Context, payload string, queued time.Time, bound int) (int, error)
	Outbox(ctx context.Context, limit int) ([]state.Queued, error)
	Sent(ctx context.Context, id int64) error
}

// Publisher is the Bus of a bot with messaging.url: Publish queues in the
// outbox, Run sends it.
type Publisher struct {
	cfg    config.Messaging
	outbox Outbox
	log    *slog.Logger
	now    func() time.Time
	// Dropped, when set, is told of every message dropped from the
	// outbox (the bound passed, or the outbox unwritable): /metrics.
	Dropped func(n int)
	// Retry is how long Run waits before it connects again.
	Retry time.Duration

	wake chan struct{}
	up   atomic.Bool
	// lastErr is why the broker was last unreachable, for /healthz.
	mu      sync.Mutex
	lastErr string
}

// New returns the publisher of cfg, queueing in outbox.
func New(cfg config.Messaging, outbox Outbox, log *slog.Logger) *Publisher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{cfg: cfg, outbox: outbox, log: log, now: time.Now, Retry: 5 * time.Second,
		wake: make(chan struct{}, 1)}
}

// Publish implements Bus: m waits in the outbox for Run.
func (p *Publisher) Publish(m Message) {
	e, err := encode(m, p.cfg.TopicPrefix, p.now())
	if err == nil {
		var b []byte
		if b, err = json.Marshal(e); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var dropped int
			dropped, err = p.outbox.Enqueue(ctx, string(b), p.now(), p.cfg.QueueLimit)
			cancel()
			if dropped > 0 {
				p.log.Warn("messaging: the outbox is full; the oldest messages were dropped", "dropped", dropped, "limit", p.cfg.QueueLimit)
				p.drop(dropped)
			}
		}
	}
	if err != nil {
		p.log.Error("messaging: a message could not be queued; it is dropped", "topic", m.Topic, "error", err.Error())
		p.drop(1)
		return
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Publisher) drop(n int) {
	if p.Dropped != nil {
		p.Dropped(n)
	}
}

// Up reports whether the broker was reachable at the last try, and if
// not, why.
func (p *Publisher) Up() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up.Load(), p.lastErr
}

// Run connects to the broker and sends the outbox, in order, until ctx
// ends; it reconnects every Retry while the broker is away.
func (p *Publisher) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := p.session(ctx)
		if ctx.Err() != nil {
			return
		}
		p.setDown(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(p.Retry):
		}
	}
}

// setDown records that the broker is unreachable because of err.
func (p *Publisher) setDown(err error) {
	p.mu.Lock()
	was := p.up.Swap(false)
	msg := err.Error()
	changed := msg != p.lastErr
	p.lastErr = msg
	p.mu.Unlock()
	if was || changed {
		p.log.Error("messaging: the broker is unreachable; messages wait in the outbox", "error", msg)
	}
}

// session connects once and sends the outbox until the connection fails
// or ctx ends.
func (p *Publisher) session(ctx context.Context) error {
	conn, err := Dial(ctx, p.cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("messaging: opening a channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("messaging: publisher confirms: %w", err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	p.mu.Lock()
	p.up.Store(true)
	p.lastErr = ""
	p.mu.Unlock()
	p.log.Info("messaging: connected to the broker", "exchange", p.cfg.Exchange)
	for {
		if err := p.drain(ctx, ch); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-closed:
			if e == nil {
				return errors.New("messaging: the broker closed the connection")
			}
			return fmt.Errorf("messaging: the broker closed the connection: %s", e.Reason)
		case <-p.wake:
		case <-time.After(p.Retry):
		}
	}
}

// drain sends the outbox, oldest first, each message removed once the
// broker has confirmed it.
func (p *Publisher) drain(ctx context.Context, ch *amqp.Channel) error {
	for {
		batch, err := p.outbox.Outbox(ctx, 100)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		for _, q := range batch {
			var e envelope
			if err := json.Unmarshal([]byte(q.Payload), &e); err != nil {
				p.log.Error("messaging: an unreadable message in the outbox is dropped", "error", err.Error())
				p.drop(1)
				if err := p.outbox.Sent(ctx, q.ID); err != nil {
					return err
				}
				continue
			}
			if err := p.send(ctx, ch, e); err != nil {
				return err
			}
			if err := p.outbox.Sent(ctx, q.ID); err != nil {
				return err
			}
		}
	}
}

// send publishes e and waits for the broker's confirm.
func (p *Publisher) send(ctx context.Context, ch *amqp.Channel, e envelope) error {
	sentAt, _ := time.Parse(SentAtLayout, e.SentAt)
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, p.cfg.Exchange, e.RoutingKey, false, false, amqp.Publishing{
		Headers:         amqp.Table(e.headers()),
		ContentType:     "application/json",
		ContentEncoding: "utf-8",
		DeliveryMode:    amqp.Persistent,
		MessageId:       e.ID,
		Timestamp:       sentAt,
		Body:            e.Body,
	})
	if err != nil {
		return fmt.Errorf("messaging: publishing: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ok, err := conf.WaitContext(wctx)
	switch {
	case err != nil:
		return fmt.Errorf("messaging: no confirm from the broker: %w", err)
	case !ok:
		return errors.New("messaging: the broker refused a message (nack)")
	}
	return nil
}

// Dial connects to cfg's broker over TLS with the client certificate,
// logged in by SASL EXTERNAL. Its errors say what went wrong in words an
// operator acts on (a refused certificate above all), never a secret.
//
// The TLS connection is made here, not by amqp091, so that the broker's
// first word on it is kept: a TLS 1.3 broker judges the client certificate
// after the client's side of the handshake and says no with an alert on the
// first read. amqp091's reader reads that alert and closes the connection,
// and the opening then fails with whatever it met next ("use of closed
// network connection", "channel/connection is not open"): the reason would
// be lost.
func Dial(ctx context.Context, cfg config.Messaging) (*amqp.Connection, error) {
	tc, err := TLSConfig(cfg)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "amqps" || u.Hostname() == "" {
		return nil, fmt.Errorf("messaging: messaging.url is not an amqps URL")
	}
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	// amqp091 is given a connection already in TLS: to it the URL is a
	// plain one, with the amqps port spelled out.
	plain := *u
	plain.Scheme = "amqp"
	plain.Host = net.JoinHostPort(u.Hostname(), cmp.Or(u.Port(), "5671"))
	var first firstWord
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: tc}
	conn, err := amqp.DialConfig(plain.String(), amqp.Config{
		SASL:      []amqp.Authentication{&amqp.ExternalAuth{}},
		Heartbeat: 10 * time.Second,
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			first.Conn = c
			return &first, nil
		},
	})
	if err == nil {
		return conn, nil
	}
	if why := first.err(); why != nil && (errors.Is(err, amqp.ErrClosed) || errors.Is(err, net.ErrClosed) || isAlert(why)) {
		// amqp091's reader met this first and closed the connection:
		// what the opening met afterwards says nothing.
		return nil, explain(why)
	}
	return nil, explain(err)
}

// firstWord is the broker's TLS connection as amqp091 uses it; it keeps
// the error of the first read that failed.
type firstWord struct {
	net.Conn
	mu      sync.Mutex
	readErr error
}

// Read reads from the connection and keeps its first error.
func (f *firstWord) Read(b []byte) (int, error) {
	n, err := f.Conn.Read(b)
	if err != nil {
		f.mu.Lock()
		if f.readErr == nil {
			f.readErr = err
		}
		f.mu.Unlock()
	}
	return n, err
}

// err is the error of the first read that failed, or nil.
func (f *firstWord) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readErr
}

// isAlert reports whether err is a TLS alert from the other side.
func isAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// explain turns a connection error into a sentence.
func explain(err error) error {
	msg := err.Error()
	var cv *tls.CertificateVerificationError
	var ae *amqp.Error
	switch {
	case errors.As(err, &cv):
		return fmt.Errorf("messaging: the broker's certificate is not trusted (messaging.ca_file): %v", cv.Err)
	case strings.Contains(msg, "bad certificate"), strings.Contains(msg, "unknown certificate authority"),
		strings.Contains(msg, "certificate required"), strings.Contains(msg, "expired certificate"):
		return fmt.Errorf("messaging: the broker refused the bot's client certificate (messaging.cert_file): %v", err)
	case errors.Is(err, amqp.ErrSASL), errors.As(err, &ae) && ae.Code == amqp.AccessRefused:
		return fmt.Errorf("messaging: the broker refused the login by certificate (EXTERNAL; is the certificate's user known to it?): %v", err)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// With TLS 1.3 the broker judges the client certificate after the
		// client's side of the handshake: a refusal is a closed connection.
		return fmt.Errorf("messaging: the broker refused the bot's client certificate (messaging.cert_file) at login: not signed by a CA it trusts, expired or revoked (%v)", err)
	}
	return fmt.Errorf("messaging: connecting to the broker: %v", err)
}

// TLSConfig is the TLS of cfg: its client certificate and CA bundle.
func TLSConfig(cfg config.Messaging) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("messaging: the client certificate (messaging.cert_file, messaging.key_file) cannot be used: %v", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("messaging: messaging.ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("messaging: messaging.ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Probe connects to cfg's broker, opens a channel and closes it
// (check-config --probe).
func Probe(ctx context.Context, cfg config.Messaging) error {
	conn, err := Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return explain(err)
	}
	return ch.Close()
}
