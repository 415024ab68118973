package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/state"
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
		return nil, Error, noPending(token)
	case cs.now().After(p.expires):
		delete(cs.pending, p.token)
		return nil, Error, fmt.Sprintf("token %s expired at %s; run the command again", p.token, p.expires.UTC().Format("15:04:05 UTC"))
	}
	if kind, msg := mayConfirm(p.identity, p.place, req); msg != "" {
		return nil, kind, msg
	}
	delete(cs.pending, p.token)
	return p, Info, ""
}

// remove removes and returns the action of token, if this process holds
// it.
func (cs *confirmations) remove(token string) *pendingAction {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	p := cs.pending[token]
	delete(cs.pending, token)
	return p
}

// mayConfirm says why req may not confirm an action asked by identity in
// place ("" when it may).
func mayConfirm(identity, place string, req Request) (Kind, string) {
	switch {
	case identity != identityOf(req):
		return Denied, "this confirmation belongs to another account; only the account that asked can confirm it"
	case place != req.Place:
		return Denied, "this confirmation must be given where the command was asked (" + placeName(place) + ")"
	}
	return Info, ""
}

// noPending says that no action waits for token.
func noPending(token string) string {
	return fmt.Sprintf("no pending action has token %s; it may have been used already", quoteShort(token))
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
// and footer are set here. The plan's text identifies it (planDigest):
// it must read the same for the same farm, with no clock in it; a plan
// whose text holds ages or other clocks uses ConfirmPlanKeyed.
func (c *Call) ConfirmPlan(plan reply.Message, action func(ctx context.Context, c *Call) error) error {
	return c.ConfirmPlanKeyed(plan, "", action)
}

// ConfirmPlanKeyed is ConfirmPlan where key, a stable form of the plan
// (what it changes, without ages or sizes that move by themselves), is
// what identifies it; "" means the plan's text.
func (c *Call) ConfirmPlanKeyed(plan reply.Message, key string, action func(ctx context.Context, c *Call) error) error {
	d := c.d
	plan.Kind = Confirm
	if c.Req.AutoConfirm != nil {
		if !c.Req.AutoConfirm(plan) {
			c.Reply("not confirmed; nothing was done")
			return nil
		}
		return c.d.act(c.ctx, c, action)
	}
	digest := planDigest(plan, key)
	if c.Req.replan != "" {
		// Confirmed in a process that no longer had the action: planned
		// again here, it runs only when it is still the plan the caller
		// was shown.
		if digest == c.Req.replan {
			c.Log.Info("confirmed plan unchanged after a restart", "action", c.Normalized())
			return c.d.act(c.ctx, c, action)
		}
		c.Log.Info("confirmed plan changed after a restart; asking again", "action", c.Normalized())
		plan.Lines = append([]string{PlanChanged}, plan.Lines...)
	}
	ttl := d.deps.Config.Confirm.TTL
	now := d.deps.Now()
	p := &pendingAction{
		token: newToken(), identity: identityOf(c.Req), place: c.Req.Place,
		action: c.Normalized(), spec: c.Spec, expires: now.Add(ttl), run: action, call: c,
	}
	if d.deps.State != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), stateTimeout)
		err := d.deps.State.AddConfirmation(ctx, state.Confirmation{Token: p.token, Identity: p.identity, Place: p.place,
			Transport: transport(c.Req), Command: p.action, Digest: digest, Expires: p.expires, Created: now}, now, maxPending)
		cancel()
		if err != nil {
			c.Log.Error("keeping a confirmation", "error", err)
			return Userf("the confirmation could not be kept in the state store (%s); nothing was done", remoteMessage(err))
		}
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

// PlanChanged heads a new plan given for a confirmation whose plan is no
// longer the one the caller was shown (planned again by a bot that
// restarted, or a replica that took over).
const PlanChanged = "the plan changed since you were asked (the bot restarted); nothing was done. New plan:"

// planDigest identifies a plan: the SHA-256 of key or, when key is "",
// of the plan's text (lines, links, table, preformatted text; not its
// footer, which holds the token).
func planDigest(plan reply.Message, key string) string {
	h := sha256.New()
	if key != "" {
		io.WriteString(h, "key\x00"+key)
		return hex.EncodeToString(h.Sum(nil))
	}
	put := func(tag string, ss ...string) {
		for _, s := range ss {
			fmt.Fprintf(h, "%s%d:%s\n", tag, len(s), s)
		}
	}
	put("l", plan.Lines...)
	for _, l := range plan.Links {
		put("a", l.Label, l.URL)
	}
	if plan.Table != nil {
		for _, col := range plan.Table.Columns {
			put("c", col.Name)
		}
		for _, r := range plan.Table.Rows {
			put("r", r...)
			put("-")
		}
	}
	put("p", plan.Pre...)
	return hex.EncodeToString(h.Sum(nil))
}

// runConfirm runs a pending action after checking its token and asking the
// ACL again (the caller's groups may have changed since). With a state
// store, the store decides: the confirmation is taken from it once, by
// whichever process (or caller) takes it first.
func (d *Dispatcher) runConfirm(ctx context.Context, c *Call) error {
	if d.deps.State != nil {
		return d.runStoredConfirm(ctx, c)
	}
	p, kind, msg := d.confirms.take(c.Arg("token"), c.Req)
	if p == nil {
		c.Send(kind, msg)
		return nil
	}
	return d.runPending(ctx, c, p)
}

// runPending runs p, the action held in memory, for c.
func (d *Dispatcher) runPending(ctx context.Context, c *Call, p *pendingAction) error {
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

// runStoredConfirm is runConfirm with a state store.
func (d *Dispatcher) runStoredConfirm(ctx context.Context, c *Call) error {
	token := strings.ToLower(c.Arg("token"))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stateTimeout)
	defer cancel()
	rec, ok, err := d.deps.State.Confirmation(sctx, token)
	if err != nil {
		return Userf("the confirmations cannot be read from the state store (%s); nothing was done", remoteMessage(err))
	}
	if !ok {
		d.confirms.remove(token)
		c.Send(Error, noPending(c.Arg("token")))
		return nil
	}
	if d.deps.Now().After(rec.Expires) {
		d.confirms.remove(token)
		if _, _, err := d.deps.State.TakeConfirmation(sctx, token); err != nil {
			c.Log.Warn("dropping an expired confirmation", "error", err)
		}
		c.Send(Error, fmt.Sprintf("token %s expired at %s; run the command again", rec.Token, rec.Expires.UTC().Format("15:04:05 UTC")))
		return nil
	}
	if kind, msg := mayConfirm(rec.Identity, rec.Place, c.Req); msg != "" {
		c.Send(kind, msg)
		return nil
	}
	if _, ok, err = d.deps.State.TakeConfirmation(sctx, token); err != nil {
		return Userf("the confirmation could not be taken from the state store (%s); nothing was done", remoteMessage(err))
	}
	if !ok { // another caller, or another process, took it first
		d.confirms.remove(token)
		c.Send(Error, noPending(c.Arg("token")))
		return nil
	}
	if p := d.confirms.remove(token); p != nil {
		return d.runPending(ctx, c, p)
	}
	// Asked in another process (a leader before this one, or this bot
	// before a restart): plan the command again, as its caller, through
	// the parser and the ACL, and run it only if the plan is unchanged.
	c.Log.Info("confirmed; planning again", "action", rec.Command)
	d.deps.Audit.Info("confirmed", "transport", transport(c.Req), "account", c.Req.Account, "place", place(c.Req),
		"action", rec.Command, "replan", true)
	req := c.Req
	req.Text, req.Received, req.replan = rec.Command, time.Time{}, rec.Digest
	d.Handle(context.WithoutCancel(ctx), req, c.out)
	return nil
}
