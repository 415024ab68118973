package commands

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
)

// maxPending bounds the confirmations waiting at once, so a flood of
// destructive requests cannot grow memory without end.
const maxPending = 256

// pendingAction is a destructive action waiting for "confirm <token>".
type pendingAction struct {
	token    string
	identity string // account, or "fas:<user>" for exec
	place    string
	action   string // the normalised command
	spec     *Spec
	expires  time.Time
	run      func(ctx context.Context, c *Call) error
	call     *Call
}

// confirmations holds the pending actions by token.
type confirmations struct {
	mu      sync.Mutex
	pending map[string]*pendingAction
	now     func() time.Time
}

// identityOf is who a token is bound to: the services account, or the FAS
// user given to exec.
func identityOf(r Request) string {
	if r.Account != "" {
		return transport(r) + ":" + r.Account
	}
	return "fas:" + r.TrustedFASUser
}

// newToken returns a short random token that is easy to type.
func newToken() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (cs *confirmations) add(p *pendingAction) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	now := cs.now()
	for t, old := range cs.pending {
		if now.After(old.expires) {
			delete(cs.pending, t)
		}
	}
	if len(cs.pending) >= maxPending {
		var oldest *pendingAction
		for _, old := range cs.pending {
			if oldest == nil || old.expires.Before(oldest.expires) {
				oldest = old
			}
		}
		delete(cs.pending, oldest.token)
	}
	cs.pending[p.token] = p
}

// take returns the action for token when req may use it, and removes it.
// A token of another account or place is left in place and reported as
// denied; an unknown or expired one as an error.
func (cs *confirmations) take(token string, req Request) (*pendingAction, Kind, string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	p, ok := cs.pending[strings.ToLower(token)]
	switch {
	case !ok:
		return nil, Error, fmt.Sprintf("no pending action has token %s; it may have been used already", quoteShort(token))
	case cs.now().After(p.expires):
		delete(cs.pending, p.token)
		return nil, Error, fmt.Sprintf("token %s expired at %s; run the command again", p.token, p.expires.UTC().Format("15:04:05 UTC"))
	case p.identity != identityOf(req):
		return nil, Denied, "this confirmation belongs to another account; only the account that asked can confirm it"
	case p.place != req.Place:
		return nil, Denied, "this confirmation must be given where the command was asked (" + placeName(p.place) + ")"
	}
	delete(cs.pending, p.token)
	return p, Info, ""
}

func placeName(p string) string {
	if p == "" {
		return "in a private message"
	}
	return p
}

// Confirm asks the caller to confirm plan before action runs. Under
// `kojibot exec` the request's AutoConfirm answers at once; on IRC the
// caller gets a "confirm:" reply with a single-use token bound to their
// account, this place and this exact action, valid for confirm.ttl.
func (c *Call) Confirm(plan string, action func(ctx context.Context, c *Call) error) error {
	return c.ConfirmPlan(reply.Text(Confirm, plan), action)
}

// ConfirmPlan is Confirm with a structured plan (lines, a table); its kind
// and footer are set here.
func (c *Call) ConfirmPlan(plan reply.Message, action func(ctx context.Context, c *Call) error) error {
	d := c.d
	plan.Kind = Confirm
	if c.Req.AutoConfirm != nil {
		if !c.Req.AutoConfirm(plan) {
			c.Reply("not confirmed; nothing was done")
			return nil
		}
		return c.d.act(c.ctx, c, action)
	}
	ttl := d.deps.Config.Confirm.TTL
	p := &pendingAction{
		token: newToken(), identity: identityOf(c.Req), place: c.Req.Place,
		action: c.Normalized(), spec: c.Spec, expires: d.deps.Now().Add(ttl), run: action, call: c,
	}
	d.confirms.add(p)
	prefix := d.deps.Config.IRC.CommandPrefix
	if transport(c.Req) == "matrix" {
		prefix = d.deps.Config.Matrix.CommandPrefix
	}
	if c.Req.Place == "" {
		prefix = ""
	}
	plan.Footer = fmt.Sprintf("to go ahead: %s (within %s; only you, here)", strings.TrimSpace(prefix+" confirm "+p.token), ttl)
	c.Say(plan)
	return nil
}

// runConfirm runs a pending action after checking its token and asking the
// ACL again (the caller's groups may have changed since).
func (d *Dispatcher) runConfirm(ctx context.Context, c *Call) error {
	p, kind, msg := d.confirms.take(c.Arg("token"), c.Req)
	if p == nil {
		c.Send(kind, msg)
		return nil
	}
	dec := d.authorize(ctx, c.Req, p.spec)
	if !dec.Allowed {
		c.Send(Denied, dec.Reason)
		return nil
	}
	orig := p.call
	orig.out = c.out
	orig.ctx = c.ctx
	c.Log.Info("confirmed", "action", p.action)
	d.deps.Audit.Info("confirmed", "transport", transport(c.Req), "account", c.Req.Account, "fas_user", dec.FASUser, "place", place(c.Req),
		"command", p.spec.Name, "action", p.action, "rule", dec.Rule)
	return d.act(ctx, orig, p.run)
}
