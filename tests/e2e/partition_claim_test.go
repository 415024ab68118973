package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/commands/state"
)

// partitionClaimWithin is how soon after a partition the records the cut
// leader left open must be closed by the new leader (the watch interval,
// after which its periodic claim would take them, is 5 minutes here).
const partitionClaimWithin = 20 * time.Second

// cutLeaderLock terminates the backend of the leader's lock connection
// in the store db, as a partition between the leader and PostgreSQL
// would, and returns when.
func cutLeaderLock(t *testing.T, db string) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, sb.PG.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var backend int
	if err := admin.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND objid::bigint = 4294967295 AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = $1)`, db).Scan(&backend); err != nil {
		t.Fatalf("the leader's lock connection: %v", err)
	}
	cut := time.Now()
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, backend); err != nil {
		t.Fatal(err)
	}
	return cut
}

// TestPartitionOrphansClaimedPromptly: the leader of two replicas is cut
// from the store while its clean-up has stopped the builder's services.
// It cancels the job and starts them again, but its journal writes are
// fenced, so it exits with the records open; the new leader claims them
// as soon as the cut leader is gone, not at its next watch interval: no
// record is open within partitionClaimWithin of the cut, and the
// services run.
func TestPartitionOrphansClaimedPromptly(t *testing.T) {
	const nick, db = "kojibot-orph", "kojibot_orph"
	count := crashSlowEntry(t, 1071)
	r := startReplicas(t, nick, "#orph", db)
	alice := join(t, nick, "alice", "")
	lead := r.leader()
	_, _, token := bldPlan(alice, "cleanup "+bldBuilder)
	bldSend(alice, "confirm "+token)
	for deadline := time.Now().Add(bldWait); ; time.Sleep(100 * time.Millisecond) {
		o, err := sb.Farm.Service(bldBuilder, "is-active", "plague-builder")
		if err != nil && strings.TrimSpace(o) == "inactive" && count() < crashMounts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the clean-up never stopped the services:\n%s", tail(r.running[lead].Output(), 30))
		}
	}
	cut := cutLeaderLock(t, db)
	for deadline := time.Now().Add(time.Minute); !r.running[lead].Exited(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the cut leader did not exit")
		}
	}
	exited := time.Now()
	r.noRace(r.running[lead])
	bots[nick] = r.running[1-lead]
	var open []state.Entry
	for deadline := cut.Add(partitionClaimWithin); ; time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := state.Inspect(ctx, "", r.dsn)
		cancel()
		if err == nil && len(st.Open) == 0 {
			break
		}
		open = st.Open
		if time.Now().After(deadline) {
			t.Fatalf("%d journal record(s) still open %s after the cut (the cut leader exited %s after it): %+v\nnew leader:\n%s",
				len(open), partitionClaimWithin, exited.Sub(cut).Round(time.Millisecond), open, tail(r.running[1-lead].Output(), 30))
		}
	}
	t.Logf("the records the cut leader left open were closed %s after the cut (it exited %s after it)",
		time.Since(cut).Round(time.Millisecond), exited.Sub(cut).Round(time.Millisecond))
	bldActive(t, bldBuilder, bldServices...)
}
