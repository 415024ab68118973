package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// readyPoll is how often the notifier looks at the IRC connection.
const readyPoll = 250 * time.Millisecond

// systemdNotifier tells systemd how `kojibot run` is doing, for a
// Type=notify unit (sd_notify(3)): READY=1 once the bot is registered on
// IRC (logged in with SASL) and in every configured channel (its own JOINs
// seen), STATUS= on every change of
// the connection, WATCHDOG=1 when the unit sets WatchdogSec=, and
// STOPPING=1 as soon as the bot is asked to stop. Without $NOTIFY_SOCKET
// every message is dropped, silently.
type systemdNotifier struct {
	// send is daemon.SdNotify; it reports whether the message was sent.
	send func(state string) (bool, error)
	// watchdog is WatchdogSec= (0: none), from daemon.SdWatchdogEnabled.
	watchdog time.Duration
	log      *slog.Logger
}

// newSystemdNotifier is the notifier for this process's $NOTIFY_SOCKET
// and $WATCHDOG_USEC.
func newSystemdNotifier(log *slog.Logger) *systemdNotifier {
	wd, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("ignoring the systemd watchdog settings", "error", err)
		wd = 0
	}
	return &systemdNotifier{
		send:     func(state string) (bool, error) { return daemon.SdNotify(false, state) },
		watchdog: wd,
		log:      log,
	}
}

// notify sends state, logging a failure (never fatal: systemd reports a
// unit that never gets READY by itself).
func (n *systemdNotifier) notify(state string) {
	if _, err := n.send(state); err != nil {
		n.log.Warn("sd_notify failed", "state", state, "error", err)
	}
}

// run reports the connection state until ctx ends, then sends STOPPING=1.
// connected is (*irc.Bot).Joined; server names the network in STATUS=.
func (n *systemdNotifier) run(ctx context.Context, connected func() bool, server string) {
	poll := time.NewTicker(readyPoll)
	defer poll.Stop()
	var ping <-chan time.Time
	if n.watchdog > 0 {
		t := time.NewTicker(n.watchdog / 2)
		defer t.Stop()
		ping = t.C
		n.notify("WATCHDOG=1")
	}
	ready, up, first := false, false, true
	for {
		if now := connected(); now != up || first {
			up, first = now, false
			switch {
			case up && !ready:
				ready = true
				n.notify("READY=1\nSTATUS=connected to " + server)
			case up:
				n.notify("STATUS=connected to " + server)
			default:
				n.notify("STATUS=connecting to " + server)
			}
		}
		select {
		case <-ctx.Done():
			n.notify("STOPPING=1\nSTATUS=stopping: restoring what running jobs stopped")
			return
		case <-ping:
			n.notify("WATCHDOG=1")
		case <-poll.C:
		}
	}
}
