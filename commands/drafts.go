package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/fedora-infra/kojibot/commands/outage"
)

// draftLink is where a draft can be read: its HTTP page, under its random
// token, when http.public_url is set, else the command that shows it.
func (d *Dispatcher) draftLink(dr outage.Draft) string {
	if u := d.deps.Config.HTTP.PublicURL; u != "" && dr.Path() != "" {
		return strings.TrimRight(u, "/") + dr.Path()
	}
	return d.deps.Config.IRC.CommandPrefix + " outage show " + dr.ID
}

func (d *Dispatcher) runOutageDraft(ctx context.Context, c *Call) error {
	cfg := d.deps.Config
	who := c.FASUser
	if who == "" {
		who = c.Req.Account
	}
	reason := c.Arg("reason")
	dr := outage.Draft{
		Service:   c.Arg("what"),
		Start:     d.deps.Now().UTC(),
		Reason:    reason,
		Affected:  []string{c.Arg("what")},
		To:        cfg.Outage.To,
		Contacts:  cfg.Disk.Escalate,
		CreatedBy: who,
	}
	saved, err := d.deps.Drafts.New(dr)
	if err != nil {
		return Userf("cannot draft: %v", err)
	}
	subject, _, err := d.deps.Template.Render(saved)
	if err != nil {
		return err
	}
	c.Reply("outage draft %s: %s — %s", saved.ID, subject, d.draftLink(saved))
	return nil
}

func (d *Dispatcher) runOutageShow(ctx context.Context, c *Call) error {
	id := c.Arg("id")
	if id == "" {
		drafts := d.deps.Drafts.List()
		if len(drafts) == 0 {
			c.Reply("no outage drafts")
			return nil
		}
		lines := []string{fmt.Sprintf("%d outage drafts, newest first:", len(drafts))}
		for _, dr := range drafts {
			subject, _, err := d.deps.Template.Render(dr)
			if err != nil {
				subject = dr.Service
			}
			lines = append(lines, fmt.Sprintf("%s by %s: %s — %s", dr.ID, orNone(dr.CreatedBy), subject, d.draftLink(dr)))
		}
		c.Reply("%s", strings.Join(lines, "\n"))
		return nil
	}
	dr, ok := d.deps.Drafts.Get(id)
	if !ok {
		return Userf("no outage draft %s (outage show lists them)", quoteShort(id))
	}
	_, body, err := d.deps.Template.Render(dr)
	if err != nil {
		return err
	}
	c.Reply("%s", body)
	return nil
}
