package matrix

import (
	"encoding/json"
	"fmt"
	"html"
	"slices"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/config"
)

// maxEventBytes is the most a reply's content may take as JSON: Matrix
// refuses events over 64 KiB (the envelope included), and a reply that is
// refused is a reply never seen.
const maxEventBytes = 48 << 10

// compose renders msgs, one after the other, as one m.notice: a plain
// body (the messages' text lines) and HTML (see messageHTML), replying to
// replyTo and mentioning caller when they are set. It holds at most
// matrix.max_lines lines, and fewer when that many would not fit in one
// event (maxEventBytes): past that, whole lines are left out from the end
// (a message's headline and footer stay) and a line says how many. The
// first message's headline and footer are never cut: at max_lines 2 a
// capped confirmation takes 3 lines rather than lose its token.
// With page, the left-out lines are published behind the long-output link
// when there is one (once, however many tries the size takes); without (a
// job's progress so far), nothing is.
func (b *Bot) compose(msgs []reply.Message, replyTo id.EventID, caller *id.UserID, page bool) *content {
	var url string
	published := false
	publish := func() string {
		if !published && page && b.opts.LongOutput != nil {
			published = true
			// The page holds the bodies: a confirmation's token is never published.
			var body []string
			for _, m := range msgs {
				body = append(body, m.Body()...)
			}
			if u, ok := b.opts.LongOutput(strings.Join(body, "\n")); ok {
				url = u
			}
		}
		return url
	}
	limit := max(b.opts.Config.MaxLines, 2)
	for {
		c := b.composeLines(msgs, replyTo, caller, page, limit, publish)
		if limit <= 2 || eventSize(c) <= maxEventBytes {
			return c
		}
		limit = max(limit/2, 2)
	}
}

// eventSize is c's size as JSON.
func eventSize(c *content) int {
	raw, err := json.Marshal(c)
	if err != nil {
		return 0
	}
	return len(raw)
}

// composeLines is compose at a limit of lines; publish returns the page
// of the whole, "" when there is none.
func (b *Bot) composeLines(msgs []reply.Message, replyTo id.EventID, caller *id.UserID, page bool, limit int, publish func() string) *content {
	total := linesOf(msgs)
	shown, note := msgs, ""
	if total > limit {
		shown = nil
		left := limit - 1 // the note's line
		for _, m := range msgs {
			if m.Len() > left {
				m, _ = m.Cap(left, 0)
			}
			if m.Len() > left && len(shown) > 0 {
				break // the first message's headline and footer are always shown
			}
			shown = append(shown, m)
			left -= m.Len()
		}
		more := total - linesOf(shown)
		switch {
		case !page:
			note = fmt.Sprintf("(%d more lines so far; all of them when the job ends)", more)
		case publish() != "":
			note = fmt.Sprintf("(%d more lines: %s)", more, publish())
		default:
			note = fmt.Sprintf("(%d more lines not shown)", more)
		}
	}
	c := &content{MsgType: "m.notice", Format: "org.matrix.custom.html", Mentions: &event.Mentions{}, capped: note != ""}
	if caller != nil {
		c.Mentions = &event.Mentions{UserIDs: []id.UserID{*caller}}
		c.Body = string(*caller) + ": "
		c.FormattedBody = pillHTML(*caller) + ": "
	}
	// The note goes before the last message's footer, which stays last
	// (a confirmation's token), as on IRC.
	var footer string
	if n := len(shown); note != "" && n > 0 && shown[n-1].Footer != "" {
		shown = append(shown[:n-1:n-1], shown[n-1])
		footer, shown[n-1].Footer = shown[n-1].Footer, ""
	}
	var text, markup []string
	for _, m := range shown {
		m, ids := b.mentionUsers(m)
		c.Mentions.UserIDs = append(c.Mentions.UserIDs, ids...)
		text = append(text, m.TextLines()...)
		markup = append(markup, messageHTML(m))
	}
	for _, l := range []string{note, footer} {
		if l != "" {
			text = append(text, l)
			markup = append(markup, html.EscapeString(l))
		}
	}
	c.Body += strings.Join(text, "\n")
	c.FormattedBody += strings.Join(markup, "<br>")
	if replyTo != "" {
		c.RelatesTo = map[string]any{"m.in_reply_to": map[string]any{"event_id": replyTo}}
	}
	return c
}

// linesOf is how many text lines msgs take.
func linesOf(msgs []reply.Message) int {
	n := 0
	for _, m := range msgs {
		n += m.Len()
	}
	return n
}

// messageHTML renders m as Matrix HTML (the subset clients allow): the
// headline with its prefix, its links and its mentions (a Matrix user id
// as a pill), the other lines one per <br>, the
// table as a <table>, the preformatted text in <pre>, and the footer.
// Every text is escaped; only http and https addresses become links.
func messageHTML(m reply.Message) string {
	m = m.Normalized()
	var b strings.Builder
	head := ""
	if len(m.Lines) > 0 {
		head = m.Lines[0]
	}
	b.WriteString(html.EscapeString(m.Kind.Prefix() + head))
	for i, l := range m.Links {
		if i == 0 {
			b.WriteString(" — ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(linkHTML(l.Label, l.URL))
	}
	if who := m.Mentions; who != nil && len(who.Users) > 0 {
		b.WriteString(" — " + html.EscapeString(who.Label) + ": ")
		for i, u := range who.Users {
			if i > 0 {
				b.WriteString(", ")
			}
			if config.ValidMatrixUserID(u) {
				b.WriteString(pillHTML(id.UserID(u)))
			} else {
				b.WriteString(html.EscapeString(u))
			}
		}
	}
	if len(m.Lines) > 1 {
		for _, l := range m.Lines[1:] {
			b.WriteString("<br>" + html.EscapeString(l))
		}
	}
	block := false // the last thing written is a block (no <br> needed after it)
	if t := m.Table; t != nil && len(t.Rows) > 0 {
		b.WriteString(tableHTML(t))
		block = true
	}
	if len(m.Pre) > 0 {
		b.WriteString("<pre>" + html.EscapeString(strings.Join(m.Pre, "\n")) + "</pre>")
		block = true
	}
	if m.Footer != "" {
		if !block {
			b.WriteString("<br>")
		}
		b.WriteString(html.EscapeString(m.Footer))
	}
	return b.String()
}

// mentionUsers is m with the FAS users it mentions as the Matrix users of
// matrix.fas_server (when set), and the Matrix ids to mention: those, and
// the entries that are Matrix user ids already. Other entries (a name
// that is no FAS user name, or any name without matrix.fas_server) stay
// text, mentioning no one.
func (b *Bot) mentionUsers(m reply.Message) (reply.Message, []id.UserID) {
	if m.Mentions == nil || len(m.Mentions.Users) == 0 {
		return m, nil
	}
	server := b.opts.Config.FASServer
	ms := &reply.Mentions{Label: m.Mentions.Label, Users: make([]string, len(m.Mentions.Users))}
	var ids []id.UserID
	for i, u := range m.Mentions.Users {
		u = strings.TrimSpace(u)
		if server != "" && acl.ValidName(u) {
			u = "@" + strings.ToLower(u) + ":" + server
		}
		if config.ValidMatrixUserID(u) && !slices.Contains(ids, id.UserID(u)) {
			ids = append(ids, id.UserID(u))
		}
		ms.Users[i] = u
	}
	m.Mentions = ms
	return m, ids
}

// pillHTML is a mention of user: a link to it, which clients show as a
// pill.
func pillHTML(user id.UserID) string {
	return fmt.Sprintf(`<a href="https://matrix.to/#/%s">%s</a>`, html.EscapeString(string(user)), html.EscapeString(string(user)))
}

// tableHTML renders t as an HTML table with a heading row.
func tableHTML(t *reply.Table) string {
	var b strings.Builder
	b.WriteString("<table><thead><tr>")
	for _, c := range t.Columns {
		b.WriteString("<th>" + html.EscapeString(c.Name) + "</th>")
	}
	b.WriteString("</tr></thead><tbody>")
	for _, r := range t.Rows {
		b.WriteString("<tr>")
		for i, c := range t.Columns {
			cell := ""
			if i < len(r) {
				cell = r[i]
			}
			if c.URL {
				cell = linkHTML(cell, cell)
			} else {
				cell = html.EscapeString(cell)
			}
			b.WriteString("<td>" + cell + "</td>")
		}
		b.WriteString("</tr>")
	}
	b.WriteString("</tbody></table>")
	return b.String()
}

// linkHTML is label linking to url, or label alone when url is not an
// http or https address.
func linkHTML(label, url string) string {
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		if label == url {
			return html.EscapeString(label)
		}
		return html.EscapeString(label + ": " + url)
	}
	return `<a href="` + html.EscapeString(url) + `">` + html.EscapeString(label) + `</a>`
}
