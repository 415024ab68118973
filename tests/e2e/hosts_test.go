package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
)

// query runs one query as the cluster's superuser on database db.
func query[T any](t *testing.T, db, sql string, args ...any) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, sb.DBs[db].Admin)
	if err != nil {
		t.Fatalf("connect %s: %v", db, err)
	}
	defer conn.Close(ctx)
	var v T
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// snapshot is every host and host_config row and the last event of db,
// as text: equal snapshots mean nothing changed.
func snapshot(t *testing.T, db string) string {
	t.Helper()
	if db == "koji_legacy" {
		return query[string](t, db, `SELECT string_agg(format('%s:%s:%s:%s', name, capacity, enabled, comment), ';' ORDER BY name) FROM host`)
	}
	return query[string](t, db, `SELECT (SELECT coalesce(max(id), 0) FROM events)::text || '|' ||
		(SELECT string_agg(format('%s:%s:%s:%s:%s', host_id, capacity, enabled, active, revoke_event), ';' ORDER BY host_id, create_event) FROM host_config)`)
}

func TestCapacityVersioned(t *testing.T) {
	alice := join(t, mainBot, "alice", "alice-ops")
	before := query[int](t, "koji", `SELECT count(*) FROM host_config hc JOIN host h ON h.id = hc.host_id WHERE h.name = 'ppc3.fedora.redhat.com'`)
	alice.expect("capacity ppc3 2", "ppc3.fedora.redhat.com capacity 4 → 2 (load 1.5)")

	active := query[int](t, "koji", `SELECT count(*) FROM host_config hc JOIN host h ON h.id = hc.host_id
		WHERE h.name = 'ppc3.fedora.redhat.com' AND hc.active AND hc.capacity = 2.0`)
	if active != 1 {
		t.Errorf("%d active host_config rows with capacity 2.0, want exactly 1", active)
	}
	actives := query[int](t, "koji", `SELECT count(*) FROM host_config hc JOIN host h ON h.id = hc.host_id
		WHERE h.name = 'ppc3.fedora.redhat.com' AND hc.active`)
	if actives != 1 {
		t.Errorf("%d active rows in all, want 1", actives)
	}
	after := query[int](t, "koji", `SELECT count(*) FROM host_config hc JOIN host h ON h.id = hc.host_id WHERE h.name = 'ppc3.fedora.redhat.com'`)
	if after != before+1 {
		t.Errorf("host_config rows %d → %d, want one more", before, after)
	}
	revoked := query[string](t, "koji", `SELECT format('%s/%s/%s/%s', hc.capacity, hc.active IS NULL, hc.revoke_event IS NOT NULL, u.name)
		FROM host_config hc JOIN host h ON h.id = hc.host_id JOIN users u ON u.id = hc.revoker_id
		WHERE h.name = 'ppc3.fedora.redhat.com' ORDER BY hc.create_event DESC LIMIT 1`)
	if revoked != "4/t/t/kojibot" {
		t.Errorf("previous row (capacity/inactive/revoke_event set/revoker) = %s, want 4/t/t/kojibot", revoked)
	}
	creator := query[string](t, "koji", `SELECT u.name FROM host_config hc JOIN host h ON h.id = hc.host_id
		JOIN users u ON u.id = hc.creator_id WHERE h.name = 'ppc3.fedora.redhat.com' AND hc.active`)
	if creator != "kojibot" {
		t.Errorf("new row's creator = %s, want kojibot", creator)
	}
	// Put it back for the other tests; the reply shows old → new again.
	alice.expect("capacity ppc3.fedora.redhat.com 4", "ppc3.fedora.redhat.com capacity 2 → 4")
}

func TestCapacityLegacy(t *testing.T) {
	alice := join(t, legacyBot, "alice", "")
	rows := query[int](t, "koji_legacy", `SELECT count(*) FROM host`)
	alice.expect("capacity ppc3 2", "ppc3.fedora.redhat.com capacity 4 → 2 (load 1.5)")
	if c := query[float64](t, "koji_legacy", `SELECT capacity FROM host WHERE name = 'ppc3.fedora.redhat.com'`); c != 2 {
		t.Errorf("legacy host.capacity = %v, want 2", c)
	}
	if n := query[int](t, "koji_legacy", `SELECT count(*) FROM host`); n != rows {
		t.Errorf("host rows %d → %d: a legacy edit must be in place", rows, n)
	}
	alice.expect("capacity ppc3 4", "ppc3.fedora.redhat.com capacity 2 → 4")
}

func TestDenied(t *testing.T) {
	before := snapshot(t, "koji")
	bob := join(t, mainBot, "bob", "")
	bob.expect("capacity ppc3 2", "denied:", "sysadmin-build")

	// Someone using the nick alice without logging in.
	impostor := join(t, mainBot, "", "alice")
	impostor.expect("capacity ppc3 2", "denied:", "identify")

	// carol is in the group; after NickServ LOGOUT she is refused.
	carol := join(t, mainBot, "carol", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := carol.c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	carol.expect("capacity ppc3 2", "denied:", "identify")
	if after := snapshot(t, "koji"); after != before {
		t.Errorf("a denied command changed the database:\n%s\n%s", before, after)
	}
}

func TestBadInput(t *testing.T) {
	alice := join(t, mainBot, "alice", "")
	before := snapshot(t, "koji")
	for _, tc := range []struct{ text, want string }{
		{"capacity ppc3 1", "greater than 1"},
		{"capacity ppc3 0.5", "greater than 1"},
		{"capacity ppc3 two", "must be a number"},
		{"capacity ppc3 -3", "must be a number"},
		{"capacity nosuchhost 2", "unknown host"},
		{"capacity ppc 2", "closest"},
		{"capacity x86-01 2", "ambiguous"},
		{"capacity ppc3;reboot 2", "host must be a host name"},
		{"capacity ppc3 2$(id)", "must be a number"},
		{"capacity `id` 2", "host must be a host name"},
		{"capacity ppc3 2 && rm -rf /", "unexpected"},
		{"capacity ppc3|cat 2", "host must be a host name"},
		{"capacity ppc3\x02 2", "control character"},
		{"capacity ppc3\x7f 2", "control character"},
		{"capacity ppc3 " + strings.Repeat("9", 300), "too long"},
		{"disable ppc3\x01ACTION x\x01", "control character"},
		{"enable ../../etc/passwd", "host must be a host name"},
		{"capacity", "missing <host>"},
	} {
		got := alice.ask(tc.text)
		if !strings.HasPrefix(got, "error: ") || !strings.Contains(got, tc.want) {
			t.Errorf("%q: reply %q, want error: containing %q", tc.text, got, tc.want)
		}
	}
	if after := snapshot(t, "koji"); after != before {
		t.Errorf("bad input changed the database:\n%s\n%s", before, after)
	}
}

func TestHostsAndHost(t *testing.T) {
	alice := join(t, mainBot, "alice", "")
	// A table: the headline, the heading, a row per host (max_lines is 4).
	lines := alice.askN("hosts ppc3*", 3)
	if lines[0] != "1 host, 1 enabled, 1 ready" {
		t.Errorf("hosts headline %q", lines[0])
	}
	if !regexp.MustCompile(`^host +enabled +ready +load +capacity +checked in$`).MatchString(lines[1]) {
		t.Errorf("hosts heading %q", lines[1])
	}
	if !regexp.MustCompile(`^ppc3\.fedora\.redhat\.com +yes +yes +1\.5 +4 +[0-9]+[smh]\S* ago$`).MatchString(lines[2]) {
		t.Errorf("hosts ppc3* row %q, want ppc3 enabled, ready, load 1.5, capacity 4 and its check-in", lines[2])
	}
	got := alice.expect("host ppc3", "ppc3.fedora.redhat.com: enabled, ready, load 1.5 of capacity 4, arches ppc ppc64, last check-in ")
	if !strings.Contains(got, " UTC (") {
		t.Errorf("host ppc3 lacks the check-in time: %q", got)
	}
	alice.expect("host x86-02.phx2.fedoraproject.org", "x86-02.phx2.fedoraproject.org: DISABLED, not ready", "comment: retired with phx2")
}

func TestLongReplySummarised(t *testing.T) {
	alice := join(t, mainBot, "alice", "")
	lines := alice.askN("hosts", 4) // 42 lines: the headline, the table's heading and 40 hosts
	if !strings.HasPrefix(lines[0], "40 hosts") {
		t.Errorf("first line %q", lines[0])
	}
	if !strings.Contains(lines[3], "more") || !strings.Contains(lines[3], "notice") {
		t.Errorf("4th line should say where the rest went: %q", lines[3])
	}
	// The whole reply comes by private NOTICE.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	notices, err := alice.c.Collect(ctx, 42, func(m ircnet.Message) bool {
		return m.Command == "NOTICE" && m.Source == mainBot && m.Target() == alice.nick
	})
	if err != nil {
		t.Fatalf("the whole reply by NOTICE: %v", err)
	}
	if !strings.Contains(notices[41].Text, "xenbuilder4.fedora.redhat.com") {
		t.Errorf("last NOTICE %q, want the last host", notices[40].Text)
	}
	// Nothing more arrives in the channel for this command.
	time.Sleep(2 * time.Second)
	extra := 0
	for _, m := range alice.c.Messages() {
		if m.Command == "PRIVMSG" && m.Source == mainBot && strings.Contains(m.Text, "bkernel") {
			extra++
		}
	}
	if extra > 2 {
		t.Errorf("%d host lines in the channel; the reply must be cut to irc.max_lines", extra)
	}
}
