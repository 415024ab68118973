package kojidb

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
)

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
