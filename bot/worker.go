package bot

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/lrstanley/girc"

	"github.com/fedora-infra/kojibot/commands"
)

// job is one command line copied out of girc's event loop.
type job struct {
	sess        *session
	nick, place string
	text        string
	received    time.Time
	// tagged is true when the account-tag capability was acknowledged: then
	// account is authoritative ("" = not logged in) and no WHOIS is needed.
	tagged  bool
	account string
}

// work runs jobs until ctx ends.
func (b *Bot) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-b.jobs:
			b.runJob(ctx, j)
		}
	}
}

// runJob resolves the caller's account and runs the command. A panic is
// recovered, logged with its stack and answered with an error.
func (b *Bot) runJob(ctx context.Context, j job) {
	out := output{b: b, nick: j.nick, place: j.place}
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("panic in command", "panic", fmt.Sprint(p), "nick", j.nick, "place", j.place,
				"text", j.text, "stack", string(debug.Stack()))
			out.Send(commands.Error, "internal error; it has been logged")
		}
	}()
	account := j.account
	if !j.tagged {
		account = j.sess.whoisAccount(ctx, j.nick, b.cfg.WhoisTimeout)
	}
	req := commands.Request{
		Account:  account,
		Nick:     j.nick,
		Place:    j.place,
		Text:     j.text,
		Received: j.received,
	}
	b.h.Handle(ctx, req, out)
}

// whoisWait is one WHOIS lookup waiting for its reply.
type whoisWait struct {
	account string
	result  chan string
}

// whoisAccount asks the server which services account nick is logged in
// to (WHOIS, numeric 330), for networks without account-tag. No 330 before
// the end of the WHOIS, no such nick, a timeout or a lost connection all
// mean "not logged in" (""). It must not run in girc's event loop.
//
// The replies are caught by foreground handlers (onWhoisAccount,
// onWhoisEnd) rather than girc's AddTmp: AddTmp handlers run on a new
// goroutine per event, so a 318 can be handled before the 330 that
// preceded it, which would lose the account; foreground handlers see the
// replies in order and only do non-blocking sends.
func (s *session) whoisAccount(ctx context.Context, nick string, timeout time.Duration) string {
	key := girc.ToRFC1459(nick)
	w := &whoisWait{result: make(chan string, 1)}
	s.mu.Lock()
	s.pending[key] = append(s.pending[key], w)
	s.mu.Unlock()
	defer s.forget(key, w)

	s.b.out.push(laneControl, []string{"WHOIS " + nick})
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case acct := <-w.result:
		return acct
	case <-t.C:
		s.b.log.Warn("WHOIS timed out: caller treated as not logged in", "nick", nick, "timeout", timeout)
	case <-s.closed:
	case <-ctx.Done():
	}
	return ""
}

func (s *session) forget(key string, w *whoisWait) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.pending[key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(s.pending, key)
	} else {
		s.pending[key] = ws
	}
}

// onWhoisAccount (330 me nick account :is logged in as) records the account
// for the lookups waiting on nick.
func (s *session) onWhoisAccount(_ *girc.Client, e girc.Event) {
	if len(e.Params) < 3 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.pending[girc.ToRFC1459(e.Params[1])] {
		w.account = e.Params[2]
	}
}

// onWhoisEnd (318 end of WHOIS, or 401 no such nick) answers the lookups
// waiting on nick.
func (s *session) onWhoisEnd(_ *girc.Client, e girc.Event) {
	if len(e.Params) < 2 {
		return
	}
	key := girc.ToRFC1459(e.Params[1])
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.pending[key] {
		acct := w.account
		if e.Command == girc.ERR_NOSUCHNICK {
			acct = ""
		}
		select {
		case w.result <- acct:
		default:
		}
	}
	delete(s.pending, key)
}
