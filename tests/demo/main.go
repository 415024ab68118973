// Command demo runs kojibot on a local sandbox: an InspIRCd + Anope network,
// PostgreSQL with a Koji database of the SOP's hosts and a FASJSON stand-in,
// and a farm of sshd builders with the SOP's problems, then prints how to
// talk to the bot. Ctrl-C stops everything. It is what `make demo` runs;
// `kojibot-demo tour` (make tour) plays a scripted conversation with it
// instead and prints the transcript.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "tour":
			return Tour(ctx, os.Stdout)
		default:
			return fmt.Errorf("usage: %s [tour]", filepath.Base(os.Args[0]))
		}
	}
	f, err := startFarm(ctx, "kojibot-demo-", false)
	if err != nil {
		return err
	}
	defer f.close()
	sb, bin, cfg := f.sb, f.bin, f.cfg
	bot, err := sb.StartBot(bin, "kojibot", cfg)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	if bot.Exited() {
		return fmt.Errorf("kojibot exited:\n%s", bot.Output())
	}
	fmt.Printf(`
kojibot is running in %[1]s on an IRC network at 127.0.0.1:%[2]d.

Talk to it as alice (in %[4]s; bob/bob-password is not in it) with irssi, in one line:
  %[7]s
then, in irssi:
    !koji help
    !koji hosts
    !koji capacity ppc3 2
    !koji disk all
    !koji cleanup xenbuilder2 --dry-run
    !koji memory xenbuilder2
    !koji restart builders xenbuilder2      (answers confirm: …; then !koji confirm <token>)
    !koji override f41 foo-1.0-1.fc41
    !koji outage draft koji /mnt/koji is full

The farm: sshd "machines" koji-hub (httpd, kojira; /mnt/koji), koji-admin (a koji
CLI stand-in), xen4 (xen configs in /srv/xen) and builders xenbuilder1-4 (kojid;
tmpfs /var/lib/mock and /mnt/build), each in its own namespaces on 127.0.0.x.
It has the SOP's problems: old buildroots, a plague build, a chroot with a bind
mount and a symlink on xenbuilder2 (try the clean-up), xenbuilder3's /var/lib/mock
at %[9]d%%, xenbuilder4 silent for an hour, /mnt/koji at %[10]d%%. Push /mnt/koji
over the threshold (the bot drafts the outage announcement):
  %[8]s

Run one command without IRC, as a FAS user:
  %[3]s exec --config %[5]s --as alice -- capacity ppc3 3
  %[3]s exec --config %[5]s --as bob -- capacity ppc3 3     (denied, exit 3)

The bot's log: %[6]s; the tour of all this: make tour
Ctrl-C stops everything.
`, sandbox.Channel, sb.IRC.Port(), bin, sandbox.Group, cfg, filepath.Join(filepath.Dir(cfg), "kojibot.log"),
		IrssiCommand(sb.IRC.Port()), sb.FillSharedCommand(), sandbox.FullBuilderPercent, sandbox.SharedPercent)
	select {
	case <-ctx.Done():
	case <-waitExit(bot):
		fmt.Fprintf(os.Stderr, "kojibot exited:\n%s", bot.Output())
	}
	fmt.Println("\nstopping…")
	return nil
}

// IrssiCommand is one shell line that starts irssi (in a home of its own)
// as alice on the demo network: it logs in to services with SASL and joins
// the channel.
func IrssiCommand(port int) string {
	return fmt.Sprintf(`h=$(mktemp -d) && printf '%%s\n' '/network add -nick alice -sasl_mechanism plain -sasl_username alice -sasl_password alice-password -autosendcmd "/join %s" kojidemo' `+
		`'/server add -network kojidemo 127.0.0.1 %d' '/connect kojidemo' > "$h/startup" && irssi --home="$h"`, sandbox.Channel, port)
}

// farm is a started sandbox with its problems, the kojibot binary and the
// demo bot's config.
type farm struct {
	sb       *sandbox.Sandbox
	dir      string
	bin, cfg string
	httpBase string
}

// close stops everything and removes the directory.
func (f *farm) close() {
	f.sb.Close()
	_ = os.RemoveAll(f.dir)
}

// startFarm starts the sandbox with its problems and writes the bot's
// config (watching every 2s, with an HTTP server for links).
// The tour's bot (fast) connects without the server's flood limits and
// sends faster, so that the tour fits in a minute.
func startFarm(ctx context.Context, prefix string, fast bool) (*farm, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, "starting the sandbox in", dir, "…")
	bin, err := sandbox.BuildBinary(dir, false)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: dir,
		Users:   map[string]string{"alice": "alice-password", "bob": "bob-password"},
		Members: []string{"alice"}, Farm: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	f := &farm{sb: sb, dir: dir, bin: bin}
	if _, err := sb.CreateDB(ctx, "koji", pgsql.Versioned); err != nil {
		f.close()
		return nil, err
	}
	if err := sb.SeedProblems(ctx, "koji"); err != nil {
		f.close()
		return nil, err
	}
	port, err := harness.FreePort()
	if err != nil {
		f.close()
		return nil, err
	}
	f.httpBase = fmt.Sprintf("http://127.0.0.1:%d", port)
	extra := map[string]any{
		"watch": map[string]any{"interval": "2s"},
		"http":  map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", port), "public_url": f.httpBase},
	}
	if fast {
		extra["irc"] = map[string]any{"send_rate": 10, "send_burst": 20}
	}
	f.cfg, err = sb.WriteConfig(ctx, sandbox.BotConfig{Nick: "kojibot", DB: "koji", Lenient: fast, Extra: extra})
	if err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

// waitExit is closed when the bot process ends.
func waitExit(b *sandbox.Bot) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for !b.Exited() {
			time.Sleep(200 * time.Millisecond)
		}
		close(ch)
	}()
	return ch
}
