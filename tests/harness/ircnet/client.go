package ircnet

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// DefaultTimeout bounds Dial, Expect and Collect when their context has no
// deadline.
const DefaultTimeout = 30 * time.Second

// Message is one line received from the server, parsed.
type Message struct {
	// Raw is the line as received, without CR LF.
	Raw string
	// Tags are the IRCv3 message tags (unescaped); nil without tags.
	Tags map[string]string
	// Prefix is the full source ("nick!user@host" or a server name).
	Prefix string
	// Source is the nick (or server name) part of Prefix.
	Source string
	// Command is the command or three-digit numeric, upper case.
	Command string
	// Params are the parameters, the trailing one included.
	Params []string
	// Text is the last parameter ("" without parameters).
	Text string
	// At is when the line was read.
	At time.Time
}

// Target is the first parameter ("" without parameters).
func (m Message) Target() string {
	if len(m.Params) == 0 {
		return ""
	}
	return m.Params[0]
}

// ParseMessage parses one IRC line (RFC 1459 with IRCv3 message tags).
func ParseMessage(line string) Message {
	m := Message{Raw: line}
	rest := strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(rest, "@") {
		var tags string
		tags, rest, _ = strings.Cut(rest[1:], " ")
		m.Tags = map[string]string{}
		for _, kv := range strings.Split(tags, ";") {
			k, v, _ := strings.Cut(kv, "=")
			m.Tags[k] = unescapeTag(v)
		}
		rest = strings.TrimLeft(rest, " ")
	}
	if strings.HasPrefix(rest, ":") {
		m.Prefix, rest, _ = strings.Cut(rest[1:], " ")
		m.Source, _, _ = strings.Cut(m.Prefix, "!")
		m.Source, _, _ = strings.Cut(m.Source, "@")
		rest = strings.TrimLeft(rest, " ")
	}
	var cmd string
	cmd, rest, _ = strings.Cut(rest, " ")
	m.Command = strings.ToUpper(cmd)
	for rest != "" {
		rest = strings.TrimLeft(rest, " ")
		if strings.HasPrefix(rest, ":") {
			m.Params = append(m.Params, rest[1:])
			break
		}
		var p string
		p, rest, _ = strings.Cut(rest, " ")
		if p != "" {
			m.Params = append(m.Params, p)
		}
	}
	if len(m.Params) > 0 {
		m.Text = m.Params[len(m.Params)-1]
	}
	return m
}

func unescapeTag(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' || i+1 == len(v) {
			if v[i] != '\\' {
				b.WriteByte(v[i])
			}
			continue
		}
		i++
		switch v[i] {
		case ':':
			b.WriteByte(';')
		case 's':
			b.WriteByte(' ')
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

// ClientOptions changes how Dial registers.
type ClientOptions struct {
	// SASLUser and SASLPassword, when set, log in with SASL PLAIN during
	// registration; Dial fails if the login fails.
	SASLUser     string
	SASLPassword string
	// Caps are extra IRCv3 capabilities to request (e.g. "account-tag").
	Caps []string
}

// Client is a minimal IRC client written on a raw socket, independent of
// the bot's IRC library. It answers PING by itself and keeps every line
// it receives so that failed expectations can show the whole transcript.
type Client struct {
	conn net.Conn
	nick string

	wmu sync.Mutex
	w   *bufio.Writer

	mu      sync.Mutex
	msgs    []Message
	used    []bool
	changed chan struct{}
	readErr error
}

// Dial connects to addr, registers as nick (logging in with SASL when
// asked) and returns once the server has sent 001.
func Dial(ctx context.Context, addr, nick string, opts ClientOptions) (*Client, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ircnet: dial %s: %w", addr, err)
	}
	c := &Client{conn: conn, nick: nick, w: bufio.NewWriter(conn), changed: make(chan struct{})}
	go c.readLoop()
	if err := c.register(ctx, opts); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ircnet: %s: %w", nick, err)
	}
	return c, nil
}

func (c *Client) register(ctx context.Context, opts ClientOptions) error {
	caps := append([]string(nil), opts.Caps...)
	if opts.SASLUser != "" {
		caps = append(caps, "sasl")
	}
	if len(caps) > 0 {
		if err := c.Raw("CAP REQ :" + strings.Join(caps, " ")); err != nil {
			return err
		}
	}
	if err := c.Raw("NICK " + c.nick); err != nil {
		return err
	}
	if err := c.Raw("USER " + c.nick + " 0 * :ircnet test client"); err != nil {
		return err
	}
	if len(caps) > 0 {
		m, err := c.Expect(ctx, func(m Message) bool {
			return m.Command == "CAP" && len(m.Params) >= 2 && (m.Params[1] == "ACK" || m.Params[1] == "NAK")
		})
		if err != nil {
			return err
		}
		if m.Params[1] == "NAK" {
			return fmt.Errorf("capabilities refused: %s", m.Text)
		}
		if opts.SASLUser != "" {
			if err := c.saslPlain(ctx, opts.SASLUser, opts.SASLPassword); err != nil {
				return err
			}
		}
		if err := c.Raw("CAP END"); err != nil {
			return err
		}
	}
	m, err := c.Expect(ctx, func(m Message) bool {
		switch m.Command {
		case "001", "432", "433", "436", "ERROR":
			return true
		}
		return false
	})
	if err != nil {
		return err
	}
	if m.Command != "001" {
		return fmt.Errorf("registration refused: %s", m.Raw)
	}
	return nil
}

func (c *Client) saslPlain(ctx context.Context, user, password string) error {
	if err := c.Raw("AUTHENTICATE PLAIN"); err != nil {
		return err
	}
	if _, err := c.Expect(ctx, func(m Message) bool { return m.Command == "AUTHENTICATE" }); err != nil {
		return err
	}
	payload := base64.StdEncoding.EncodeToString([]byte(user + "\x00" + user + "\x00" + password))
	if err := c.Raw("AUTHENTICATE " + payload); err != nil {
		return err
	}
	m, err := c.Expect(ctx, func(m Message) bool {
		switch m.Command {
		case "903", "902", "904", "905", "906":
			return true
		}
		return false
	})
	if err != nil {
		return err
	}
	if m.Command != "903" {
		return fmt.Errorf("SASL login as %s failed: %s", user, m.Raw)
	}
	return nil
}

// Nick is the nick the client registered with.
func (c *Client) Nick() string { return c.nick }

func (c *Client) readLoop() {
	sc := bufio.NewScanner(c.conn)
	sc.Buffer(make([]byte, 0, 16<<10), 1<<20)
	for sc.Scan() {
		m := ParseMessage(sc.Text())
		m.At = time.Now()
		if m.Command == "PING" {
			_ = c.Raw("PONG :" + m.Text)
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.used = append(c.used, false)
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
	err := sc.Err()
	if err == nil {
		err = errors.New("connection closed by server")
	}
	c.mu.Lock()
	c.readErr = err
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// Raw sends one line as is (CR LF is added).
func (c *Client) Raw(line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return fmt.Errorf("ircnet: line contains CR or LF: %q", line)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(DefaultTimeout))
	if _, err := c.w.WriteString(line + "\r\n"); err != nil {
		return fmt.Errorf("ircnet: write: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("ircnet: write: %w", err)
	}
	return nil
}

// Privmsg sends text to target (a channel or a nick).
func (c *Client) Privmsg(target, text string) error {
	return c.Raw("PRIVMSG " + target + " :" + text)
}

// Join joins channel and waits until the server confirms it (end of NAMES).
func (c *Client) Join(ctx context.Context, channel string) error {
	if err := c.Raw("JOIN " + channel); err != nil {
		return err
	}
	m, err := c.Expect(ctx, func(m Message) bool {
		switch m.Command {
		case "366":
			return len(m.Params) >= 2 && strings.EqualFold(m.Params[1], channel)
		case "403", "405", "471", "473", "474", "475":
			return true
		}
		return false
	})
	if err != nil {
		return err
	}
	if m.Command != "366" {
		return fmt.Errorf("ircnet: join %s: %s", channel, m.Raw)
	}
	return nil
}

// Identify logs in to account with NickServ IDENTIFY and waits for the
// server's 900 (RPL_LOGGEDIN).
func (c *Client) Identify(ctx context.Context, account, password string) error {
	if err := c.Privmsg("NickServ", "IDENTIFY "+account+" "+password); err != nil {
		return err
	}
	m, err := c.Expect(ctx, func(m Message) bool {
		if m.Command == "900" {
			return true
		}
		return m.Command == "NOTICE" && strings.EqualFold(m.Source, "NickServ") &&
			(strings.Contains(m.Text, "incorrect") || strings.Contains(m.Text, "isn't registered"))
	})
	if err != nil {
		return fmt.Errorf("ircnet: identify %s: %w", account, err)
	}
	if m.Command != "900" {
		return fmt.Errorf("ircnet: identify %s: %s", account, m.Text)
	}
	return nil
}

// Logout logs out with NickServ LOGOUT and waits for the server's 901
// (RPL_LOGGEDOUT).
func (c *Client) Logout(ctx context.Context) error {
	if err := c.Privmsg("NickServ", "LOGOUT"); err != nil {
		return err
	}
	m, err := c.Expect(ctx, func(m Message) bool {
		return m.Command == "901" || (m.Command == "NOTICE" && strings.EqualFold(m.Source, "NickServ") &&
			strings.Contains(m.Text, "not identified"))
	})
	if err != nil {
		return fmt.Errorf("ircnet: logout: %w", err)
	}
	if m.Command != "901" {
		return fmt.Errorf("ircnet: logout: %s", m.Text)
	}
	return nil
}

// Expect waits for the first received line, not taken by an earlier
// Expect or Collect, that match accepts, and takes it. Lines that do not
// match stay available. Without a deadline on ctx, DefaultTimeout applies.
// The error of a failed wait carries the transcript of the connection.
func (c *Client) Expect(ctx context.Context, match func(Message) bool) (Message, error) {
	ms, err := c.Collect(ctx, 1, match)
	if err != nil {
		return Message{}, err
	}
	return ms[0], nil
}

// Collect waits for n lines that match accepts, as Expect does, and
// returns them in the order received.
func (c *Client) Collect(ctx context.Context, n int, match func(Message) bool) ([]Message, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	var got []Message
	next := 0
	for {
		c.mu.Lock()
		for ; next < len(c.msgs) && len(got) < n; next++ {
			if !c.used[next] && match(c.msgs[next]) {
				c.used[next] = true
				got = append(got, c.msgs[next])
			}
		}
		changed, readErr := c.changed, c.readErr
		c.mu.Unlock()
		if len(got) == n {
			return got, nil
		}
		if readErr != nil {
			return got, fmt.Errorf("ircnet: %s: %d of %d lines received before %v\n%s", c.nick, len(got), n, readErr, c.Transcript())
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return got, fmt.Errorf("ircnet: %s: %d of %d lines received: %w\n%s", c.nick, len(got), n, ctx.Err(), c.Transcript())
		}
	}
}

// Messages returns every line received so far.
func (c *Client) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// Transcript is every line received so far, one a line, for failure
// messages.
func (c *Client) Transcript() string {
	var b strings.Builder
	for _, m := range c.Messages() {
		fmt.Fprintf(&b, "  %s < %s\n", m.At.Format("15:04:05.000"), m.Raw)
	}
	return b.String()
}

// Quit sends QUIT and closes the connection.
func (c *Client) Quit() error {
	_ = c.Raw("QUIT :bye")
	return c.conn.Close()
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}
