// Command demo runs kojibot on a local sandbox: an InspIRCd + Anope network,
// PostgreSQL with a Koji database of the SOP's hosts and a FASJSON stand-in,
// then prints how to talk to the bot. Ctrl-C stops everything. It is what
// `make demo` runs.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

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
	dir, err := os.MkdirTemp("", "kojibot-demo-")
	if err != nil {
		return err
	}
	fmt.Println("starting the sandbox in", dir, "…")
	bin, err := sandbox.BuildBinary(dir, false)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: dir,
		Users:   map[string]string{"alice": "alice-password", "bob": "bob-password"},
		Members: []string{"alice"}, Farm: true})
	if err != nil {
		return err
	}
	defer sb.Close()
	if _, err := sb.CreateDB(ctx, "koji", pgsql.Versioned); err != nil {
		return err
	}
	cfg, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: "kojibot", DB: "koji"})
	if err != nil {
		return err
	}
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

Talk to it from an IRC client (accounts alice/alice-password, in %[4]s, and bob/bob-password, not in it):
  irssi -c 127.0.0.1 -p %[2]d -n alice
    /msg NickServ IDENTIFY alice-password
    /join %[1]s
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

Run one command without IRC, as a FAS user:
  %[3]s exec --config %[5]s --as alice -- capacity ppc3 3
  %[3]s exec --config %[5]s --as bob -- capacity ppc3 3     (denied, exit 3)

The bot's log: %[6]s
Ctrl-C stops everything.
`, sandbox.Channel, sb.IRC.Port(), bin, sandbox.Group, cfg, filepath.Join(filepath.Dir(cfg), "kojibot.log"))
	select {
	case <-ctx.Done():
	case <-waitExit(bot):
		fmt.Fprintf(os.Stderr, "kojibot exited:\n%s", bot.Output())
	}
	fmt.Println("\nstopping…")
	return nil
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
