// Command demo runs kojibot on a local sandbox: an InspIRCd + Anope network,
// the upstream Koji hub (the bot logs in to its API; its database is the
// bot's koji.db for connections) with the SOP's
// hosts, a FASJSON stand-in, a farm of sshd builders running the upstream
// kojid, with the SOP's problems and, when Dendrite builds,
// a Matrix homeserver, then prints how to talk to the bot. Ctrl-C stops
// everything. It is what `make demo` runs; `kojibot-demo tour` (make tour)
// plays a scripted conversation with it instead and prints the transcript;
// `kojibot-demo screenshot <file.png>` (make screenshot) plays it too, and
// writes a screenshot of the bot's /status on the way.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
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
			return Tour(ctx, os.Stdout, "")
		case "screenshot":
			if len(os.Args) != 3 {
				return fmt.Errorf("usage: %s screenshot <file.png>", filepath.Base(os.Args[0]))
			}
			return Tour(ctx, os.Stdout, os.Args[2])
		default:
			return fmt.Errorf("usage: %s [tour | screenshot <file.png>]", filepath.Base(os.Args[0]))
		}
	}
	f, err := startFarm(ctx, "kojibot-demo-", false, true)
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
	kojiCLI, err := sb.Koji.ShellCommand()
	if err != nil {
		return err
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

The farm: a real Koji %[12]s hub (Apache, PostgreSQL), which the bot reaches
through its API (koji.hub, certificate login as kojibot; koji.db for connections),
sshd "machines" koji-hub (httpd, kojira; /mnt/koji), koji-admin (the upstream
koji CLI, logged in to the hub), xen4 (xen configs in
/srv/xen) and builders xenbuilder1-4 (kojid: the upstream daemon, logged in as
xenbuilderN.fedora.redhat.com, checking in every %[13]ds; tmpfs /var/lib/mock
and /mnt/build), each in its own namespaces on 127.0.0.x. It has the SOP's
problems: old buildroots, a plague build, a chroot with a bind mount and a
symlink on xenbuilder2 (try the clean-up), xenbuilder3's /var/lib/mock at
%[9]d%%, xenbuilder4's kojid stopped an hour ago, /mnt/koji at %[10]d%%. Push /mnt/koji
over the threshold (the bot drafts the outage announcement):
  %[8]s

Run one command without IRC, as a FAS user:
  %[3]s exec --config %[5]s --as alice -- capacity ppc3 3
  %[3]s exec --config %[5]s --as bob -- capacity ppc3 3     (denied, exit 3)

The real Koji hub with its upstream CLI, in one line (then koji list-tagged
dist-f41-override, …; list-history shows the bot's writes, by user kojibot):
  koji() { %[11]s "$@"; }; koji list-hosts; koji list-history --host ppc3.fedora.redhat.com

The farm in a browser (hosts, mounts, alerts, jobs, drafts; live):
  %[14]s/status

The bot's log: %[6]s; the tour of all this: make tour
Ctrl-C stops everything.
`, sandbox.Channel, sb.IRC.Port(), bin, sandbox.Group, cfg, filepath.Join(filepath.Dir(cfg), "kojibot.log"),
		IrssiCommand(sb.IRC.Port()), sb.FillSharedCommand(), sandbox.FullBuilderPercent, sandbox.SharedPercent,
		kojiCLI, realkoji.Version, sandbox.KojidSleep, f.httpBase)
	if f.mx != nil {
		fmt.Print(MatrixHowTo(f.mx))
	} else {
		why, _, _ := strings.Cut(f.mxErr.Error(), "\n")
		fmt.Printf("\nMatrix: not available in this demo (%s); the bot runs on IRC only.\n", why)
	}
	select {
	case <-ctx.Done():
	case <-waitExit(bot):
		fmt.Fprintf(os.Stderr, "kojibot exited:\n%s", bot.Output())
	}
	fmt.Println("\nstopping…")
	return nil
}

// demoUsers are the demo's IRC, FAS and Matrix users; alice is in the
// group, bob is not.
var demoUsers = map[string]string{"alice": "alice-password", "bob": "bob-password"}

// MatrixHowTo says how to talk to the bot on the demo's homeserver: from
// any client, or with curl.
func MatrixHowTo(m *sandbox.Matrix) string {
	u := m.HS.URL
	room := strings.ReplaceAll(string(m.RoomID), "!", "%21")
	login := fmt.Sprintf(`tok=$(curl -s -X POST %s/_matrix/client/v3/login -d '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"%s"}' | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')`,
		u, demoUsers["alice"])
	send := fmt.Sprintf(`curl -s -X PUT -H "Authorization: Bearer $tok" %s/_matrix/client/v3/rooms/%s/send/m.room.message/demo$(date +%%s%%N) -d '{"msgtype":"m.text","body":"!koji hosts"}'; echo`, u, room)
	read := fmt.Sprintf(`sleep 2; curl -s -H "Authorization: Bearer $tok" '%s/_matrix/client/v3/rooms/%s/messages?dir=b&limit=3' | grep -o '"body":"[^"]*"'`, u, room)
	return fmt.Sprintf(`
Matrix: a Dendrite homeserver at %[1]s, server name fedora.im
(so @alice:fedora.im is FAS user alice). The bot is @%[2]s:fedora.im in
%[3]s, where it also posts the watcher's alerts. Point any Matrix
client (Element, nheko, gomuks, …) at %[1]s, log in as
alice / %[4]s (or bob / %[5]s, not in %[6]s), join %[3]s
and say !koji hosts. Or with curl, as alice (already in the room):
  %[7]s
  %[8]s
  %[9]s
`, u, sandbox.MatrixBotUser, m.RoomAlias, demoUsers["alice"], demoUsers["bob"], sandbox.Group, login, send, read)
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
	// mx is the Matrix homeserver the bot serves too, when it started;
	// mxErr says why not.
	mx    *sandbox.Matrix
	mxErr error
}

// close stops everything and removes the directory.
func (f *farm) close() {
	f.sb.Close()
	_ = os.RemoveAll(f.dir)
}

// startFarm starts the sandbox with its problems and writes the bot's
// config (watching every 2s, with an HTTP server for links). With
// withMatrix it also starts a Matrix homeserver for the bot; when that
// fails the farm runs on IRC only and mxErr says why.
// The tour's bot (fast) connects without the server's flood limits and
// sends faster, so that the tour fits in a minute.
func startFarm(ctx context.Context, prefix string, fast, withMatrix bool) (*farm, error) {
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
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: dir, Users: demoUsers, Members: []string{"alice"}, Farm: true, ThroughHub: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	f := &farm{sb: sb, dir: dir, bin: bin}
	if err := sb.SeedProblems(ctx, sandbox.KojiDB); err != nil {
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
		"http":  map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", port), "public_url": f.httpBase, "status_page": true},
	}
	if fast {
		extra["irc"] = map[string]any{"send_rate": 10, "send_burst": 20}
	}
	if withMatrix {
		fmt.Fprintln(os.Stderr, "starting the Matrix homeserver (Dendrite; its first build takes a few minutes) …")
		mctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		f.mx, f.mxErr = sb.StartMatrix(mctx, demoUsers)
		cancel()
		if f.mxErr != nil {
			fmt.Fprintln(os.Stderr, "demo: no Matrix homeserver, the bot runs on IRC only:", f.mxErr)
			f.mx = nil
		} else {
			extra["matrix"] = f.mx.Section
		}
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
