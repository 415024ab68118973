package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/outage"
)

// draftWhere is outage.Draft.Where with this bot's public URL and prefix.
func (d *Dispatcher) draftWhere(dr outage.Draft) (string, bool) {
	return dr.Where(d.deps.Config.HTTP.PublicURL, d.deps.Config.IRC.CommandPrefix)
}

// draftMessage is a reply naming dr with head: with its page as a link,
// or without a public URL, the command that shows it.
func (d *Dispatcher) draftMessage(dr outage.Draft, head string) reply.Message {
	where, isURL := d.draftWhere(dr)
	if isURL {
		return reply.Message{Lines: []string{head}, Links: []reply.Link{{Label: "draft", URL: where}}}
	}
	return reply.Message{Lines: []string{head + " — " + where}}
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
	saved, err := d.newDraft(dr)
	if err != nil {
		return Userf("cannot draft: %v", err)
	}
	subject, _, err := d.deps.Template.Render(saved)
	if err != nil {
		return err
	}
	c.Say(d.draftMessage(saved, fmt.Sprintf("outage draft %s: %s", saved.ID, subject)))
	return nil
}

func (d *Dispatcher) runOutageShow(ctx context.Context, c *Call) error {
	id := c.Arg("id")
	if id == "" {
		drafts, err := d.deps.Drafts.List()
		if err != nil {
			return Userf("the outage drafts cannot be read from the state store now (%s); try again", remoteMessage(err))
		}
		if len(drafts) == 0 {
			c.Reply("no outage drafts")
			return nil
		}
		table := &reply.Table{Columns: []reply.Column{{Name: "draft"}, {Name: "by"}, {Name: "subject"}, {Name: "link", URL: d.deps.Config.HTTP.PublicURL != ""}}}
		for _, dr := range drafts {
			subject, _, err := d.deps.Template.Render(dr)
			if err != nil {
				subject = dr.Service
			}
			where, _ := d.draftWhere(dr)
			table.Rows = append(table.Rows, []string{dr.ID, orNone(dr.CreatedBy), subject, where})
		}
		c.Say(reply.Message{Lines: []string{fmt.Sprintf("%s, newest first:", Count(len(drafts), "outage draft", "outage drafts"))}, Table: table})
		return nil
	}
	dr, ok, err := d.deps.Drafts.Get(id)
	if err != nil {
		return Userf("the outage drafts cannot be read from the state store now (%s); try again", remoteMessage(err))
	}
	if !ok {
		return Userf("no outage draft %s (outage show lists them)", quoteShort(id))
	}
	_, body, err := d.deps.Template.Render(dr)
	if err != nil {
		return err
	}
	c.Say(reply.Message{Lines: []string{fmt.Sprintf("outage draft %s:", dr.ID)}, Pre: strings.Split(strings.TrimRight(body, "\n"), "\n")})
	return nil
}
