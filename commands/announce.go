package commands

import (
	"context"
	"strings"

	"github.com/fedora-infra/kojibot/commands/messaging"
	"github.com/fedora-infra/kojibot/commands/outage"
)

// maxSaid bounds the lines of a call kept for its message.
const maxSaid = 50

// act runs a confirmed action of c (or one confirmed by exec's prompt)
// and announces its result, unless it started a job, which announces its
// own when it ends.
func (d *Dispatcher) act(ctx context.Context, c *Call, action func(ctx context.Context, c *Call) error) error {
	err := action(ctx, c)
	d.announce(c, nil, err)
	return err
}

// dryRun reports whether c only shows a plan.
func (c *Call) dryRun() bool { return c.Bool("dry-run") }

// announce publishes the result of c, a command that changes something,
// on the message bus: when it ends, or, run as job j, when j ends. Read-only
// commands, outage drafts (announced as drafts) and calls that started a
// job (announced at its end) are not announced here.
func (d *Dispatcher) announce(c *Call, j *Job, err error) {
	if c.Spec.Tier != NeedsEntry || c.Spec.Name == "outage draft" {
		return
	}
	c.mu.Lock()
	started, failed, said := c.jobStarted, c.failed, append([]string(nil), c.said...)
	c.mu.Unlock()
	if j == nil && started {
		return
	}
	body := messaging.Command{Agent: c.FASUser, Account: c.Req.Account, Transport: transport(c.Req), Place: place(c.Req),
		Command: c.Spec.Name, Args: strings.TrimSpace(strings.TrimPrefix(c.Normalized(), c.Spec.Name)),
		Outcome: "ok", Lines: said}
	for _, a := range []string{"host", "builder"} {
		if h := c.Arg(a); h != "" {
			body.Host = h
			break
		}
	}
	if j != nil {
		body.Job = j.ID
		body.Lines = j.Log()
		if len(body.Lines) > maxSaid {
			body.Lines = body.Lines[len(body.Lines)-maxSaid:]
		}
		if j.State() == JobCancelled {
			body.Outcome = "cancelled"
		}
	}
	if err != nil || (j == nil && failed) {
		body.Outcome = "error"
		if err != nil {
			body.Lines = append(body.Lines, d.userMessage(c, err))
		}
	}
	if body.Lines == nil {
		body.Lines = []string{}
	}
	sev := messaging.Info
	if body.Outcome != "ok" {
		sev = messaging.Warning
	}
	d.deps.Bus.Publish(messaging.Message{Topic: strings.ReplaceAll(c.Spec.Name, " ", "."), Schema: messaging.SchemaCommand,
		Severity: sev, Users: []string{c.FASUser}, Body: body})
}

// newDraft stores dr and announces it on the message bus.
func (d *Dispatcher) newDraft(dr outage.Draft) (outage.Draft, error) {
	saved, err := d.deps.Drafts.New(dr)
	if err != nil {
		return saved, err
	}
	subject, text, rerr := d.deps.Template.Render(saved)
	if rerr != nil {
		subject = saved.Service
	}
	body := messaging.Outage{ID: saved.ID, Agent: saved.CreatedBy, Service: saved.Service, Subject: subject, Body: text}
	if where, isURL := d.draftWhere(saved); isURL {
		body.URL = where
	}
	d.deps.Bus.Publish(messaging.Message{Topic: "outage.draft", Schema: messaging.SchemaOutage, Severity: messaging.Info,
		Users: []string{saved.CreatedBy}, Body: body})
	return saved, nil
}
