package irc

import (
	"fmt"
	"strings"

	"github.com/fedora-infra/kojibot/bot/reply"
)

// renderer turns reply text into IRC lines: addressed, split to the line
// budget and, in a channel, capped at maxLines.
type renderer struct {
	maxLines   int
	lineBytes  int
	self       selfMask
	longOutput func(text string) (string, bool)
}

// reply renders m for nick in place ("" is a private reply). main goes to
// the reply lane; bulk, the whole message by private NOTICE when a channel
// reply was summarised without a link, goes to the bulk lane. A summarised
// reply still ends with m's footer (a confirmation's token) after the note.
func (r renderer) reply(nick, place string, m reply.Message) (main, bulk []string) {
	m = m.Normalized()
	body := cleanText(strings.Join(m.Body(), "\n"))
	footer := cleanText(m.Footer)
	whole := body
	if footer != "" {
		whole = strings.TrimLeft(body+"\n"+footer, "\n")
	}
	if whole == "" {
		return nil, nil
	}
	if place == "" {
		return r.plain("PRIVMSG", nick, "", whole), nil
	}
	addr := nick + ": "
	budget := textBudget(r.lineBytes, r.self, "PRIVMSG", place) - len(addr)
	ls := lines(splitText(body, budget))
	var tail []string
	if footer != "" {
		tail = lines(splitText(footer, budget))
	}
	if len(ls)+len(tail) <= r.maxLines {
		return wire("PRIVMSG", place, addr, append(ls, tail...)), nil
	}
	// The headline, the note and the footer are never cut: at max_lines 2
	// a summarised confirmation takes 3 lines rather than lose its token.
	head := ls[:max(min(r.maxLines-1-len(tail), len(ls)), 1)]
	if t := m.Table.Lines(); len(head) > 1 && len(t) > 0 && head[len(head)-1] == t[0] {
		head = head[:len(head)-1] // a table's heading without a row under it says nothing
	}
	more := len(ls) - len(head)
	var note string
	// The page holds the body: a confirmation's token is never published.
	if url, ok := r.publish(body); ok {
		note = fmt.Sprintf("… %d more lines: %s", more, url)
	} else {
		note = fmt.Sprintf("… %d more lines sent to you by private notice", more)
		bulk = r.plain("NOTICE", nick, "", whole)
	}
	out := append(head[:len(head):len(head)], lines(splitText(note, budget))...)
	return wire("PRIVMSG", place, addr, append(out, tail...)), bulk
}

// notify renders a notification for channel: unaddressed, capped at
// maxLines like a reply; the rest is published when a link can be made,
// else the count of lines left out is said.
func (r renderer) notify(channel, text string) []string {
	text = cleanText(text)
	if text == "" {
		return nil
	}
	budget := textBudget(r.lineBytes, r.self, "PRIVMSG", channel)
	ls := lines(splitText(text, budget))
	if len(ls) > r.maxLines {
		head := ls[:r.maxLines-1]
		more := len(ls) - len(head)
		note := fmt.Sprintf("… %d more lines not shown", more)
		if url, ok := r.publish(text); ok {
			note = fmt.Sprintf("… %d more lines: %s", more, url)
		}
		ls = append(head[:len(head):len(head)], lines(splitText(note, budget))...)
	}
	return wire("PRIVMSG", channel, "", ls)
}

// plain renders text to target without a line cap beyond maxBulkLines; the
// cut, if any, is said in the last line.
func (r renderer) plain(command, target, addr, text string) []string {
	budget := textBudget(r.lineBytes, r.self, command, target) - len(addr)
	ls := lines(splitText(text, budget))
	if len(ls) > maxBulkLines {
		more := len(ls) - (maxBulkLines - 1)
		ls = append(ls[:maxBulkLines-1:maxBulkLines-1], fmt.Sprintf("… %d more lines cut: output too long for IRC", more))
	}
	return wire(command, target, addr, ls)
}

func (r renderer) publish(text string) (string, bool) {
	if r.longOutput == nil {
		return "", false
	}
	url, ok := r.longOutput(text)
	return url, ok && url != ""
}

// wire builds the raw lines. An empty text line is sent as one space, as
// IRC does not carry empty messages.
func wire(command, target, addr string, ls []string) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		if addr == "" && l == "" {
			l = " "
		}
		out[i] = command + " " + target + " :" + addr + l
	}
	return out
}
