package chaos

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// watcher is an IRC client in the channel that counts the bot nicks there
// (NAMES) and asks the bot something to see that it answers. It
// reconnects when IRC restarts.
type watcher struct {
	sb *sandbox.Sandbox

	mu    sync.Mutex // one NAMES or probe at a time
	c     *ircnet.Client
	seq   int
	names string
}

// connect (re)connects the watcher and joins the channel.
func (w *watcher) connect(ctx context.Context) error {
	if w.c != nil {
		w.c.Quit()
		w.c = nil
	}
	w.seq++
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := ircnet.Dial(ctx, w.sb.IRC.Addr(), fmt.Sprintf("chaosw%d", w.seq), ircnet.ClientOptions{})
	if err != nil {
		return err
	}
	if err := c.Join(ctx, sandbox.Channel); err != nil {
		c.Quit()
		return err
	}
	w.c = c
	return nil
}

// present is how many bot nicks are in the channel now; -1 when IRC
// cannot tell (down).
func (w *watcher) present(ctx context.Context) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	for try := 0; try < 2; try++ {
		if w.c == nil {
			if err := w.connect(ctx); err != nil {
				return -1
			}
		}
		if n, err := w.count(ctx); err == nil {
			return n
		}
		w.c.Quit()
		w.c = nil
	}
	return -1
}

func (w *watcher) count(ctx context.Context) (int, error) {
	if err := w.c.Raw("NAMES " + sandbox.Channel); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var names []string
	for {
		m, err := w.c.Expect(ctx, func(m ircnet.Message) bool { return m.Command == "353" || m.Command == "366" })
		if err != nil {
			return 0, err
		}
		if m.Command == "366" {
			break
		}
		names = append(names, strings.Fields(m.Text)...)
	}
	n := 0
	for _, name := range names {
		if strings.HasPrefix(strings.TrimLeft(name, "@+%&~"), Nick) {
			n++
		}
	}
	w.names = strings.Join(names, " ")
	return n, nil
}

// lastNames is the channel's member list at the last NAMES.
func (w *watcher) lastNames() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.names
}

// answers asks the bot "jobs" and reports whether it answered within 10s.
func (w *watcher) answers(ctx context.Context) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.c == nil {
		if err := w.connect(ctx); err != nil {
			return false
		}
	}
	nick := fmt.Sprintf("chaosw%d", w.seq)
	if err := w.c.Privmsg(sandbox.Channel, "!koji jobs"); err != nil {
		w.c.Quit()
		w.c = nil
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := w.c.Expect(ctx, func(m ircnet.Message) bool {
		return m.Command == "PRIVMSG" && strings.HasPrefix(m.Source, Nick) && m.Target() == sandbox.Channel && strings.HasPrefix(m.Text, nick+": ")
	})
	return err == nil
}

// close leaves IRC.
func (w *watcher) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.c != nil {
		w.c.Quit()
		w.c = nil
	}
}
