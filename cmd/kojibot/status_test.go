package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/state"
)

// TestStatusCommand: `kojibot status` on a SQLite store prints no leader,
// this test's process among the others, and the open journal records; it
// writes nothing (the store's processes are the same after it).
func TestStatusCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	path := filepath.Join(dir, "kojibot.yaml")
	yaml := fmt.Sprintf(`irc:
  server: 127.0.0.1
  nick: kojibot
  channels: ["#fedora-admin"]
acl:
  source: static
  groups: {sysadmin-build: [alice]}
koji:
  db: {dsn: "postgres://kojibot@db.example.org/koji"}
  weburl: https://koji.example.org/koji
state: {dir: %q}
http: {listen: ""}
`, stateDir)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(ctx, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Record(ctx, state.Entry{Host: "bvm-ppc3", Kind: state.KindService, Name: "kojid", Job: "12", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	root := newRoot(strings.NewReader(""), &stdout, &stderr)
	root.SetArgs([]string{"--config", path, "status"})
	if err := root.Execute(); err != nil {
		t.Fatalf("status: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"leader: none",
		"standbys: none",
		"other kojibot processes",
		state.Holder(),
		"open journal records: 1",
		"bvm-ppc3", "kojid", "alice",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not say %q:\n%s", want, out)
		}
	}
	again, err := state.Inspect(ctx, stateDir, "")
	if err != nil || len(again.Processes) != 1 {
		t.Errorf("after status: %+v %v, want the one process", again.Processes, err)
	}
}

// TestPrintStatus: the leader with its holder and since, the term, each
// standby, and no records.
func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printStatus(&b, state.Status{
		Leader: &state.LeaderInfo{Term: 7, Holder: "bot1:42", Since: now.Add(-time.Minute), Held: true},
		Processes: []state.Process{
			{Holder: "bot1:42", Role: state.RoleLeader, Started: now.Add(-time.Hour)},
			{Holder: "bot2:43", Role: state.RoleStandby, Started: now.Add(-time.Hour)},
		},
	}, now)
	want := "leader: bot1:42, since 2026-12-04T17:59:00Z (1m0s ago)\n" +
		"term: 7\n" +
		"standbys:\n" +
		"  bot2:43, up since 2026-12-04T17:00:00Z (1h0m0s ago)\n" +
		"open journal records: none\n"
	if b.String() != want {
		t.Errorf("status:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	printStatus(&b, state.Status{Leader: &state.LeaderInfo{Term: 8, Holder: "bot1:42"}}, now)
	if !strings.Contains(b.String(), "leader: none at the moment (the last, bot1:42, is gone") {
		t.Errorf("status without a leader:\n%s", b.String())
	}
}
