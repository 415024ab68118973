package kojidb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
)

// idle opens a connection as dsn's role, runs query once and leaves it idle.
func idle(t *testing.T, dsn, query string) *pgx.Conn {
	t.Helper()
	conn := connect(t, dsn)
	if _, err := conn.Exec(context.Background(), query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return conn
}

// ensureRole creates a login role with SELECT on the Koji tables of dsns.
func ensureRole(t *testing.T, dsns pgsql.DSNs, role string) string {
	t.Helper()
	ctx := context.Background()
	_, err := dsns.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s LOGIN; END IF; END $$`, role, role))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dsns.Exec(ctx, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+role); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsns.Admin)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	return u.String()
}

// alive waits up to 10s for conn to be dead (want false) or checks that it
// still answers (want true).
func alive(ctx context.Context, conn *pgx.Conn, want bool) bool {
	if want {
		return conn.Ping(ctx) == nil
	}
	return harness.WaitFor(ctx, 10*time.Second, func() bool { return conn.Ping(ctx) != nil })
}

func pid(c *pgx.Conn) int { return int(c.PgConn().PID()) }

func TestBackendsAndTerminate(t *testing.T) {
	ctx := context.Background()
	dsns, db := newKoji(t, cluster, pgsql.Versioned, "kojibot")
	if _, err := db.Hosts(ctx); err != nil { // the bot's own connection
		t.Fatal(err)
	}
	webDSN := ensureRole(t, dsns, "kojiweb")

	long := "SELECT '" + strings.Repeat("x", 3*QueryMax) + "'"
	old := []*pgx.Conn{idle(t, dsns.Koji, "SELECT 'old-0'"), idle(t, dsns.Koji, "SELECT 'old-1'"), idle(t, dsns.Koji, long)}
	oldWeb := idle(t, webDSN, "SELECT 'web'")
	oldAdmin := idle(t, dsns.Admin, "SELECT 'admin'")
	time.Sleep(time.Second)
	mid := time.Now()
	time.Sleep(time.Second)
	young := []*pgx.Conn{idle(t, dsns.Koji, "SELECT 'new-0'"), idle(t, dsns.Koji, "SELECT 'new-1'")}

	got, err := db.Backends(ctx, pgsql.HubRole, time.Since(mid))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, b := range got {
		pids = append(pids, b.PID)
		if b.User != "koji" || b.State != "idle" || b.ClientAddr != "127.0.0.1" || !b.QueryStart.Before(mid) {
			t.Errorf("backend %+v", b)
		}
		if n := len([]rune(b.Query)); n > QueryMax {
			t.Errorf("query of %d characters, want at most %d", n, QueryMax)
		}
	}
	want := []int{pid(old[0]), pid(old[1]), pid(old[2])}
	if !slices.Equal(pids, want) {
		t.Fatalf("old koji backends %v, want %v (oldest first)", pids, want)
	}
	if got[0].Query != "SELECT 'old-0'" || !strings.HasPrefix(got[2].Query, "SELECT 'xxx") {
		t.Errorf("queries %q, %q", got[0].Query, got[2].Query[:20])
	}
	all, err := db.Backends(ctx, pgsql.HubRole, 0)
	if err != nil || len(all) != 5 {
		t.Errorf("all koji backends: %d, %v; want 5", len(all), err)
	}

	terminated, skipped, err := db.TerminateBackends(ctx, pgsql.HubRole, time.Since(mid), got)
	if err != nil || len(terminated) != 3 || len(skipped) != 0 {
		t.Fatalf("TerminateBackends = %d terminated, %d skipped, %v; want 3, 0", len(terminated), len(skipped), err)
	}
	for i, c := range old {
		if !alive(ctx, c, false) {
			t.Errorf("old koji connection %d survived", i)
		}
	}
	for i, c := range young {
		if !alive(ctx, c, true) {
			t.Errorf("young koji connection %d was killed", i)
		}
	}
	if !alive(ctx, oldWeb, true) || !alive(ctx, oldAdmin, true) {
		t.Errorf("another role's old connection was killed")
	}
	if _, err := db.Hosts(ctx); err != nil {
		t.Errorf("the bot's own connection: %v", err)
	}
	// A terminated backend leaves pg_stat_activity when it has exited, a
	// moment after pg_terminate_backend returned.
	var left []Backend
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left, err = db.Backends(ctx, pgsql.HubRole, 0)
		if (err == nil && len(left) == 2) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || len(left) != 2 {
		t.Errorf("koji backends left: %+v, %v; want the 2 young ones", left, err)
	}
}

func TestTerminateNeverOwnBackend(t *testing.T) {
	ctx := context.Background()
	dsns, db := newKoji(t, cluster, pgsql.Versioned, "kojibot")
	// The pool's one connection, which every call below uses.
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	own := int(conn.Conn().PgConn().PID())
	conn.Release()
	other := idle(t, dsns.Kojibot, "SELECT 'second bot connection'")

	list, err := db.Backends(ctx, pgsql.BotRole, 0)
	if err != nil || len(list) != 1 || list[0].PID != pid(other) {
		t.Fatalf("Backends(kojibot) = %+v, %v; want only the other connection %d (own %d)", list, err, pid(other), own)
	}
	// Even when asked for by pid, the bot's own backend is left alone.
	ownStart := scalar[time.Time](t, dsns, "SELECT backend_start FROM pg_stat_activity WHERE pid = $1", own)
	asked := append(list, Backend{PID: own, User: pgsql.BotRole, BackendStart: ownStart})
	terminated, skipped, err := db.TerminateBackends(ctx, pgsql.BotRole, 0, asked)
	if err != nil || len(terminated) != 1 || terminated[0].PID != pid(other) || len(skipped) != 1 || skipped[0].PID != own {
		t.Fatalf("TerminateBackends(kojibot) = %+v, %+v, %v; want the other one terminated, the own one skipped", terminated, skipped, err)
	}
	if !alive(ctx, other, false) {
		t.Error("the other bot connection survived")
	}
	n := scalar[int64](t, dsns, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", own)
	if n != 1 {
		t.Errorf("the bot's own backend %d is gone", own)
	}
}

func TestBackendsRefusals(t *testing.T) {
	ctx := context.Background()
	dsns, db := newKoji(t, cluster, pgsql.Versioned, "kojibot")
	if _, err := db.Backends(ctx, "", 0); err == nil {
		t.Error("Backends with no role: no error")
	}
	if _, _, err := db.TerminateBackends(ctx, "", 0, nil); err == nil {
		t.Error("TerminateBackends with no role: no error")
	}

	// A bot role without pg_read_all_stats cannot see the hub's backends'
	// ages: say so rather than find nothing.
	hub := idle(t, dsns.Koji, "SELECT 'hub'")
	blind, err := Open(ctx, ensureRole(t, dsns, "kojibot_nostats"), "kojibot", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer blind.Close()
	if _, err := blind.Backends(ctx, pgsql.HubRole, 0); !errors.Is(err, ErrNoStats) {
		t.Errorf("Backends without pg_read_all_stats: %v, want ErrNoStats", err)
	}
	if _, _, err := blind.TerminateBackends(ctx, pgsql.HubRole, 0, []Backend{{PID: pid(hub), User: pgsql.HubRole}}); !errors.Is(err, ErrNoStats) {
		t.Errorf("TerminateBackends without pg_read_all_stats: %v, want ErrNoStats", err)
	}
	if !alive(ctx, hub, true) {
		t.Error("hub connection killed by a refused call")
	}
}

func TestConnectionCount(t *testing.T) {
	ctx := context.Background()
	dsns, db := newKoji(t, cluster, pgsql.Versioned, "kojibot")
	// Connections closed by earlier tests may take a moment to go away.
	var base, maxConns int
	var err error
	harness.WaitFor(ctx, 10*time.Second, func() bool {
		base, maxConns, err = db.ConnectionCount(ctx, pgsql.HubRole)
		return err == nil && base == 0
	})
	if err != nil || base != 0 {
		t.Fatalf("ConnectionCount(koji) with no hub connections = %d, %v", base, err)
	}
	for i := range 4 {
		idle(t, dsns.Koji, fmt.Sprintf("SELECT %d", i))
	}
	count, max2, err := db.ConnectionCount(ctx, pgsql.HubRole)
	if err != nil || count != base+4 || maxConns != pgsql.MaxConnections || max2 != maxConns {
		t.Errorf("ConnectionCount(koji) = %d/%d, %v; want %d/%d", count, max2, err, base+4, pgsql.MaxConnections)
	}
	all, _, err := db.ConnectionCount(ctx, "")
	if err != nil || all < count+1 { // the koji ones and at least the bot's
		t.Errorf("ConnectionCount(all) = %d, %v; want more than %d", all, err, count)
	}
}

// pids lists the pids of backends.
func pids(bs []Backend) []int {
	var out []int
	for _, b := range bs {
		out = append(out, b.PID)
	}
	slices.Sort(out)
	return out
}

// TestTerminateOnlyWhatWasShown: between the list shown in the
// confirmation and the kill, one backend is replaced under its pid, one
// starts a new query, one goes away and a new old one appears: only the
// unchanged one is terminated.
func TestTerminateOnlyWhatWasShown(t *testing.T) {
	ctx := context.Background()
	dsns, db := newKoji(t, cluster, pgsql.Versioned, "kojibot")
	replaced := idle(t, dsns.Koji, "SELECT 'replaced'")
	busy := idle(t, dsns.Koji, "SELECT 'busy'")
	gone := idle(t, dsns.Koji, "SELECT 'gone'")
	same := idle(t, dsns.Koji, "SELECT 'same'")
	time.Sleep(1200 * time.Millisecond)
	const older = time.Second
	shown, err := db.Backends(ctx, pgsql.HubRole, older)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{pid(replaced), pid(busy), pid(gone), pid(same)}; !slices.Equal(pids(shown), sorted(want)) {
		t.Fatalf("shown %v, want %v", pids(shown), sorted(want))
	}
	for _, b := range shown {
		if b.BackendStart.IsZero() || b.BackendStart.After(b.QueryStart) {
			t.Errorf("backend %d: backend_start %v, query_start %v", b.PID, b.BackendStart, b.QueryStart)
		}
	}

	// A backend that is not in the confirmation, old by the time of the kill.
	unseen := idle(t, dsns.Koji, "SELECT 'unseen'")
	time.Sleep(1200 * time.Millisecond)
	// The pid shown for "replaced" now belongs to another backend: what
	// the confirmation showed had an earlier start.
	for i := range shown {
		if shown[i].PID == pid(replaced) {
			shown[i].BackendStart = shown[i].BackendStart.Add(-time.Second)
		}
	}
	if _, err := busy.Exec(ctx, "SELECT 'a new query'"); err != nil {
		t.Fatal(err)
	}
	gonePID := pid(gone)
	if err := gone.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The server ends that backend a moment after the client closed:
	// until then it is still listed, and may be terminated.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		now, err := db.Backends(ctx, pgsql.HubRole, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(pids(now), gonePID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d still listed 10 s after its client closed", gonePID)
		}
	}

	terminated, skipped, err := db.TerminateBackends(ctx, pgsql.HubRole, older, shown)
	if err != nil {
		t.Fatal(err)
	}
	if got := pids(terminated); !slices.Equal(got, []int{pid(same)}) {
		t.Errorf("terminated %v, want only %d", got, pid(same))
	}
	if got, want := pids(skipped), sorted([]int{pid(replaced), pid(busy), gonePID}); !slices.Equal(got, want) {
		t.Errorf("skipped %v, want %v", got, want)
	}
	if !alive(ctx, same, false) {
		t.Error("the unchanged backend survived")
	}
	for name, c := range map[string]interface{ Ping(context.Context) error }{"replaced": replaced, "busy": busy, "unseen": unseen} {
		if err := c.Ping(ctx); err != nil {
			t.Errorf("the %s backend was killed: %v", name, err)
		}
	}
}

func sorted(s []int) []int { slices.Sort(s); return s }

// TestOwnPoolNeverListed: every backend of the bot's pool, and a backend
// with the bot's application_name (another kojibot process, such as
// `kojibot exec`), is neither listed nor terminated, even when the bot's
// role is the one asked about and its pids are asked for.
func TestOwnPoolNeverListed(t *testing.T) {
	ctx := context.Background()
	dsns, db := newKoji(t, cluster, pgsql.Versioned, "kojibot")
	// Make the pool open several connections at once.
	var held []*pgxpool.Conn
	var own []int
	for range 3 {
		c, err := db.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		own = append(own, int(c.Conn().PgConn().PID()))
	}
	for _, c := range held {
		c.Release()
	}
	sep := "?"
	if strings.Contains(dsns.Kojibot, "?") {
		sep = "&"
	}
	sibling := idle(t, dsns.Kojibot+sep+"application_name="+ApplicationName, "SELECT 'another kojibot process'")
	stranger := idle(t, dsns.Kojibot, "SELECT 'not the bot'")
	var app string
	if err := db.pool.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&app); err != nil || app != ApplicationName {
		t.Fatalf("the pool's application_name is %q (%v), want %q", app, err, ApplicationName)
	}

	list, err := db.Backends(ctx, pgsql.BotRole, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := pids(list); !slices.Equal(got, []int{pid(stranger)}) {
		t.Fatalf("Backends(kojibot) = %v, want only %d (pool %v, sibling %d)", got, pid(stranger), own, pid(sibling))
	}
	asked := slices.Clone(list)
	for _, p := range append(slices.Clone(own), pid(sibling)) {
		start := scalar[time.Time](t, dsns, "SELECT backend_start FROM pg_stat_activity WHERE pid = $1", p)
		asked = append(asked, Backend{PID: p, User: pgsql.BotRole, BackendStart: start})
	}
	terminated, skipped, err := db.TerminateBackends(ctx, pgsql.BotRole, 0, asked)
	if err != nil {
		t.Fatal(err)
	}
	if got := pids(terminated); !slices.Equal(got, []int{pid(stranger)}) {
		t.Errorf("terminated %v, want only %d", got, pid(stranger))
	}
	if len(skipped) != len(own)+1 {
		t.Errorf("skipped %v, want the pool's %v and the sibling %d", pids(skipped), own, pid(sibling))
	}
	for _, p := range own {
		if n := scalar[int64](t, dsns, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", p); n != 1 {
			t.Errorf("the pool's backend %d is gone", p)
		}
	}
	if !alive(ctx, sibling, true) {
		t.Error("the other kojibot process's backend was killed")
	}
	if _, err := db.Hosts(ctx); err != nil {
		t.Errorf("the pool after the kill: %v", err)
	}
}
