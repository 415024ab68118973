package kojiapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojiapi/xmlrpc"
)

// loginLocked opens a session for s with sslLogin on URL/ssllogin: the
// TLS client certificate, or a SPNEGO token for HTTP/<the hub's host>,
// proves the bot's identity; for a caller's session, proxyuser names the
// caller. s.mu is held.
func (c *Client) loginLocked(ctx context.Context, s *session) error {
	var args []any
	if s.user != "" {
		args = append(args, Kwargs{"proxyuser": s.user})
	}
	body, err := xmlrpc.EncodeCall("sslLogin", args)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLogin, err)
	}
	v, how, err := c.exchange(ctx, c.login, "sslLogin", body, nil)
	if err != nil {
		var f *Fault
		if errors.As(err, &f) {
			c.log.Warn("kojihub: the hub refused the login", "user", userOf(s), "fault", f.Message())
			return fmt.Errorf("%w: %w", ErrLogin, f)
		}
		if how == attemptNotSent || errors.Is(err, ErrNotAnswering) || errors.Is(err, ErrLogin) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrLogin, err)
	}
	m, _ := v.(map[string]any)
	id, _ := m["session-id"].(int64)
	key, _ := m["session-key"].(string)
	if id == 0 || key == "" {
		return fmt.Errorf("%w: the hub's answer to sslLogin holds no session", ErrLogin)
	}
	s.id, s.key, s.callnum = id, key, 0
	c.log.Info("kojihub: logged in", "user", userOf(s), "session", id)
	return nil
}

// logout ends s's session at the hub, if it has one, within the timeout.
func (c *Client) logout(s *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.id == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(c.opts.Timeout, 10*time.Second))
	defer cancel()
	body, _ := xmlrpc.EncodeCall("logout", nil)
	hdr := http.Header{}
	hdr.Set("Koji-Session-Id", strconv.FormatInt(s.id, 10))
	hdr.Set("Koji-Session-Key", s.key)
	hdr.Set("Koji-Session-Callnum", strconv.FormatInt(s.callnum, 10))
	s.callnum++
	if _, _, err := c.exchange(ctx, c.endpoint, "logout", body, hdr); err != nil {
		c.log.Debug("kojihub: logout failed", "user", userOf(s), "err", err)
	} else {
		c.log.Debug("kojihub: logged out", "user", userOf(s))
	}
	s.id, s.key, s.callnum = 0, "", 0
}
