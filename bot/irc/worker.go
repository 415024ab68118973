package irc

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/lrstanley/girc"

	"github.com/fedora-infra/kojibot/bot"
	"github.com/fedora-infra/kojibot/bot/reply"
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
	// whois is the lookup sent when the line arrived, when not tagged.
	whois *whoisWait
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
	out := output{b: b, nick: j.nick, place: j.place, rcpt: b.recipientOf(j.sess, j.nick, j.account)}
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("panic in command", "panic", fmt.Sprint(p), "nick", j.nick, "place", j.place,
				"text", j.text, "stack", string(debug.Stack()))
			out.Send(reply.Text(commands.Error, "internal error; it has been logged"))
		}
	}()
	account := j.account
	if !j.tagged {
		var voided bool
		account, voided = j.sess.awaitWhois(ctx, j.whois, j.nick, b.cfg.WhoisTimeout)
		if voided {
			b.log.Warn("command voided: the nick changed or quit before services answered the WHOIS",
				"nick", j.nick, "place", j.place, "text", j.text)
			out.Send(reply.Text(commands.Error, "your nick changed or quit before services said who you are; command ignored"))
			return
		}
		out.rcpt = b.recipientOf(j.sess, j.nick, account)
		if account == "" {
			if ok, warn := b.users.Allow(bot.AnonymousBucket); !ok {
				if warn {
					out.Send(reply.Text(commands.Info, "slow down, please: too many commands from people not identified to services"))
				}
				b.log.Info("command rate-limited", "nick", j.nick, "account", "", "place", j.place)
				return
			}
		}
	}
	req := commands.Request{
		Transport: commands.TransportIRC,
		Account:   account,
		Nick:      j.nick,
		Place:     j.place,
		Text:      j.text,
		Received:  j.received,
	}
	b.h.Handle(ctx, req, out)
}

// whoisAnswer is what a WHOIS lookup learnt.
type whoisAnswer struct {
	account string
	// voided is set when the nick changed or quit before the answer, so
	// that the account (if any) may belong to someone else.
	voided bool
}

// whoisWait is one WHOIS lookup waiting for its reply.
type whoisWait struct {
	account string
	result  chan whoisAnswer
}

// startWhois registers a lookup of nick's services account and sends the
// WHOIS at once, when the line arrives: the answer then describes whoever
// held the nick when the command was sent, unless the nick changes or
// quits first, which voids the lookup (onNickGone). It runs in girc's
// event loop and does not block.
//
// The replies are caught by foreground handlers (onWhoisAccount,
// onWhoisEnd) rather than girc's AddTmp: AddTmp handlers run on a new
// goroutine per event, so a 318 can be handled before the 330 that
// preceded it, which would lose the account; foreground handlers see the
// replies in order and only do non-blocking sends.
func (s *session) startWhois(nick string) *whoisWait {
	key := s.fold(nick)
	w := &whoisWait{result: make(chan whoisAnswer, 1)}
	s.mu.Lock()
	s.pending[key] = append(s.pending[key], w)
	s.mu.Unlock()
	s.b.out.push(laneControl, []string{"WHOIS " + nick})
	return w
}

// awaitWhois waits for the answer of w: the services account of nick, ""
// for not logged in (no 330 before the end of the WHOIS, no such nick, a
// timeout or a lost connection), or voided. It must not run in girc's
// event loop.
func (s *session) awaitWhois(ctx context.Context, w *whoisWait, nick string, timeout time.Duration) (account string, voided bool) {
	key := s.fold(nick)
	defer s.forget(key, w)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case a := <-w.result:
		return a.account, a.voided
	case <-t.C:
		s.b.log.Warn("WHOIS timed out: caller treated as not logged in", "nick", nick, "timeout", timeout)
	case <-s.closed:
	case <-ctx.Done():
	}
	return "", false
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
	for _, w := range s.pending[s.fold(e.Params[1])] {
		w.account = e.Params[2]
	}
}

// onWhoisEnd (318 end of WHOIS, or 401 no such nick) answers the lookups
// waiting on nick.
func (s *session) onWhoisEnd(_ *girc.Client, e girc.Event) {
	if len(e.Params) < 2 {
		return
	}
	key := s.fold(e.Params[1])
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.pending[key] {
		acct := w.account
		if e.Command == girc.ERR_NOSUCHNICK {
			acct = ""
		}
		select {
		case w.result <- whoisAnswer{account: acct}:
		default:
		}
	}
	delete(s.pending, key)
}

// onNickGone (NICK or QUIT of a nick with lookups pending) voids those
// lookups: a WHOIS answered after the change would describe whoever holds
// the nick now, not whoever sent the command.
func (s *session) onNickGone(_ *girc.Client, e girc.Event) {
	if e.Source == nil {
		return
	}
	key := s.fold(e.Source.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.pending[key] {
		select {
		case w.result <- whoisAnswer{voided: true}:
		default:
		}
	}
	delete(s.pending, key)
}
