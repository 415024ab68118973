package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/fedora-infra/kojibot/tests/harness/matrixhs"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// TestMatrixOnlyNeverDialsIRC: a config with a matrix: section and no irc:
// section runs the Matrix transport alone. The bot answers in its room,
// its log says that Matrix is the one transport, and it never names or
// dials an IRC server (before, irc.server defaulted to a public network).
func TestMatrixOnlyNeverDialsIRC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const botUser, botPassword = "kojibot-monly", "monly-password"
	if _, err := hs.CreateUser(ctx, botUser, botPassword); err != nil {
		t.Fatal(err)
	}
	admin, err := matrixLogin(ctx, "opsadmin")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := admin.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "monly", Name: "monly"})
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "matrix-password")
	if err := os.WriteFile(pwFile, []byte(botPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: botUser, DB: "koji", Extra: map[string]any{
		"irc": nil,
		"matrix": map[string]any{"homeserver": hs.URL, "user_id": "@" + botUser + ":" + matrixhs.ServerName,
			"password_file": pwFile, "rooms": []string{"#monly:" + matrixhs.ServerName}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := os.ReadFile(path); err != nil || strings.Contains(string(cfg), "irc:") {
		t.Fatalf("the config has an irc: section (%v):\n%s", err, cfg)
	}
	b, err := sb.StartBot(binary, botUser, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	botID := "@" + botUser + ":" + matrixhs.ServerName
	joined := false
	for deadline := time.Now().Add(2 * time.Minute); !joined && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var m event.MemberEventContent
		joined = admin.StateEvent(ctx, resp.RoomID, event.StateMember, botID, &m) == nil && m.Membership == event.MembershipJoin
	}
	if !joined {
		t.Fatalf("the Matrix-only bot did not join its room\n%s", tail(b.Output(), 30))
	}

	alice, err := matrixLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.JoinRoom(ctx, string(resp.RoomID), nil); err != nil {
		t.Fatal(err)
	}
	sync, err := alice.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
	if err != nil {
		t.Fatal(err)
	}
	u := &mUser{t: t, cli: alice, since: sync.NextBatch, room: resp.RoomID,
		bot: id.UserID(botID), botName: botUser}
	bots[botUser] = b
	defer delete(bots, botUser)
	if got := u.ask("whoami"); !strings.Contains(got, "alice") {
		t.Fatalf("whoami in the Matrix-only bot's room: %q", got)
	}

	log := b.Output()
	var starting string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "kojibot starting") {
			starting = line
		}
	}
	if !strings.Contains(starting, `"transports":"matrix"`) {
		t.Errorf("the start-up line does not say Matrix is the one transport: %q", starting)
	}
	for _, bad := range []string{"libera", `"component":"bot"`} {
		if strings.Contains(log, bad) {
			t.Errorf("the Matrix-only bot's log mentions %q, an IRC connection:\n%s", bad, tail(log, 30))
		}
	}
	// No socket of the bot's is connected to an IRC port; the main bot's
	// is, which shows that the check sees such connections.
	if main := bots[mainBot]; main == nil ||
		!remotePortInUse(t, main.PID(), sb.IRC.Port()) && !remotePortInUse(t, main.PID(), sb.IRC.StrictPort()) {
		t.Fatal("the main bot's IRC connection is not seen: the check below would prove nothing")
	}
	for _, port := range []int{6667, 6697, sb.IRC.Port(), sb.IRC.StrictPort()} {
		if remotePortInUse(t, b.PID(), port) {
			t.Errorf("the Matrix-only bot has a connection to port %d", port)
		}
	}
}

// remotePortInUse reports whether process pid has a TCP socket connected
// to port on any address (from /proc: its socket inodes, and the kernel's
// TCP tables of its network namespace).
func remotePortInUse(t *testing.T, pid, port int) bool {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	want := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(fields) > 9 && strings.HasSuffix(fields[2], want) && inodes[fields[9]] {
				f.Close()
				return true
			}
		}
		f.Close()
	}
	return false
}
