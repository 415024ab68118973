package acl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/fedora-infra/kojibot/bot/reply"
)

// Authenticator adds credentials to a FASJSON request before it is sent.
//
// FASJSON's /v1 API accepts only GSSAPI (Kerberos, SPNEGO "Authorization:
// Negotiate ...") in production; a Kerberos implementation using the bot's
// keytab will satisfy this interface. An error from Authenticate makes the
// request fail as FASJSON being unavailable (fail closed).
type Authenticator interface {
	Authenticate(req *http.Request) error
}

// NoAuth sends requests without credentials: for the FASJSON stand-in of
// the tests and the demo, or a FASJSON reached through an authenticating
// proxy.
type NoAuth struct{}

// Authenticate implements Authenticator and changes nothing.
func (NoAuth) Authenticate(*http.Request) error { return nil }

// maxBody caps what is read of a FASJSON answer.
const maxBody = 1 << 20

// notFoundError is FASJSON's 404 with its JSON error body.
type notFoundError struct{ message string }

func (e *notFoundError) Error() string { return "FASJSON: not found: " + e.message }

// unavailable builds an ErrUnavailable whose text names the failure.
func unavailable(format string, args ...any) error {
	return &reasonError{ErrUnavailable, ErrUnavailable.Error() + ": " + fmt.Sprintf(format, args...)}
}

// get fetches base+path?query within the configured timeout and decodes the
// "result" of FASJSON's envelope into out. A 404 with a FASJSON error body
// is a *notFoundError; every other failure wraps ErrUnavailable.
func (c *Checker) get(ctx context.Context, path string, query url.Values, out any) error {
	// A FASJSON that just failed is not asked again for failureMemory:
	// every worker would otherwise wait acl.timeout on a dead server.
	c.mu.Lock()
	downErr, downUntil := c.downErr, c.downUntil
	c.mu.Unlock()
	if downErr != nil && c.now().Before(downUntil) {
		return downErr
	}
	err := c.getOnce(ctx, path, query, out)
	if errors.Is(err, ErrUnavailable) && ctx.Err() == nil {
		c.mu.Lock()
		c.downErr, c.downUntil = err, c.now().Add(FailureMemory)
		c.mu.Unlock()
	}
	return err
}

// getOnce is one request to FASJSON.
func (c *Checker) getOnce(ctx context.Context, path string, query url.Values, out any) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	start := time.Now()
	err := c.fetch(ctx, target, out)
	if err != nil && ctx.Err() != nil {
		// The deadline or the caller ended the request: say which.
		if parent.Err() != nil {
			err = unavailable("request abandoned: %v", context.Cause(parent))
		} else {
			err = unavailable("no answer within %s", c.timeout)
		}
	}
	var nf *notFoundError
	switch {
	case err == nil || errors.As(err, &nf):
		c.log.Debug("acl: FASJSON", "path", path, "query", query.Encode(), "duration", time.Since(start), "err", err)
	default:
		c.log.Warn("acl: FASJSON", "path", path, "query", query.Encode(), "duration", time.Since(start), "err", err)
	}
	return err
}

func (c *Checker) fetch(ctx context.Context, target string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return unavailable("bad request: %v", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kojibot")
	if err := c.auth.Authenticate(req); err != nil {
		var ke *kerberosError
		if errors.As(err, &ke) {
			// Already "FASJSON unavailable (Kerberos: …)"; the detail
			// was logged by the authenticator.
			return ke
		}
		return unavailable("authenticating: %v", err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return unavailable("%v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return unavailable("reading the answer: %v", err)
	}

	var flat struct {
		Message *string `json:"message"`
	}
	message := ""
	if json.Unmarshal(body, &flat) == nil && flat.Message != nil {
		message = clean(*flat.Message)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound && flat.Message != nil:
		return &notFoundError{message: message}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return unavailable("%s, our credentials were refused%s", resp.Status, suffix(message))
	default:
		return unavailable("%s%s", resp.Status, suffix(message))
	}

	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return unavailable("the answer is not JSON: %v", err)
	}
	if env.Result == nil || string(env.Result) == "null" {
		return unavailable("the answer has no result")
	}
	if err := json.Unmarshal(env.Result, out); err != nil {
		return unavailable("unexpected result %.60s: %v", string(env.Result), err)
	}
	return nil
}

func suffix(message string) string {
	if message == "" {
		return ""
	}
	return ": " + message
}

// clean makes a server's message safe for one IRC line: control characters
// become spaces and it is cut to 200 bytes on a rune boundary.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return reply.Cut(strings.TrimSpace(s), 200)
}
