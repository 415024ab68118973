package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() {
		fmt.Println("skipped with -short: the fault run starts real servers")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// shortSeed is TestChaosShort's seed: its seven steps have seven kinds of
// fault (a kill of the bot and of an exec, a restart of the bot's
// database, a builder rebooted, its network cut, slowed and reset) among
// the SOP's jobs.
const shortSeed = 20261493

// runShort runs o and fails t on a violation, with the run's output.
func runShort(t *testing.T, o Options) *Report {
	t.Helper()
	var out strings.Builder
	o.Out = &out
	o.Settle = 90 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if vs := rep.Violations(); len(vs) > 0 {
		t.Errorf("%d violation(s); repeat with %s", len(vs), rep.Repeat())
	}
	if len(rep.Results) != len(rep.Schedule) {
		t.Errorf("%d of %d steps ran", len(rep.Results), len(rep.Schedule))
	}
	return rep
}

// TestChaosShort: a short seeded fault run on the PostgreSQL store with
// IRC and Matrix, ending with a homeserver restart while a Matrix
// caller's job runs, and one on the SQLite store whose state.dir fills
// up: no violation. The two run side by side, each on a farm of its own.
func TestChaosShort(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		steps := append(Schedule(shortSeed, 7, StorePostgres, 2, true),
			Step{N: 8, Job: JobRestartBuilders, Target: "xenbuilder1", Matrix: true, Fault: FaultHomeserver, AtJob: true, After: 500 * time.Millisecond})
		rep := runShort(t, Options{Seed: shortSeed, Store: StorePostgres, Replicas: 2, Matrix: true, Schedule: steps})
		kinds := map[Fault]bool{}
		matrix := 0
		for _, r := range rep.Results {
			kinds[r.Step.Fault] = true
			if r.Step.Matrix {
				matrix++
			}
		}
		if len(kinds) < 8 || matrix < 2 {
			t.Errorf("the short schedule has %d kinds of fault, want 8, and %d Matrix callers, want 2 or more: %v", len(kinds), matrix, kinds)
		}
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		rep := runShort(t, Options{Seed: shortSeed, Store: StoreSQLite, Schedule: []Step{
			{N: 1, Job: JobCleanup, Target: "xenbuilder3", Fault: FaultStateDiskFull, AtJob: true, Hold: 3 * time.Second},
			{N: 2, Job: JobRestartBuilders, Target: "xenbuilder2", Fault: FaultKillLeader, AtJob: true, After: 300 * time.Millisecond},
			{N: 3, Job: JobCapacity, Target: "ppc2.fedora.redhat.com", Arg: "3.25", Fault: FaultStateDiskFull, Hold: 2 * time.Second},
			// Asked of a bot killed before the confirmation, confirmed
			// on the one started again: the plan is in the store.
			{N: 4, Job: JobCleanup, Target: "xenbuilder1", Fault: FaultKillLeader, After: 3 * time.Second},
		}})
		if r := rep.Results[len(rep.Results)-1]; r.Outcome != "result" {
			t.Errorf("a clean-up confirmed after its bot was killed: %s (%s), want its result", r.Outcome, r.Note)
		}
	})
}

// TestScheduleRepeats: a seed gives the same schedule, and another seed
// another one; a run without standby replicas never kills a standby.
func TestScheduleRepeats(t *testing.T) {
	a, b := Schedule(42, 50, StorePostgres, 1, false), Schedule(42, 50, StorePostgres, 1, false)
	if FormatSchedule(a) != FormatSchedule(b) {
		t.Fatalf("seed 42 gave two schedules:\n%s\n%s", FormatSchedule(a), FormatSchedule(b))
	}
	if FormatSchedule(Schedule(43, 50, StorePostgres, 1, false)) == FormatSchedule(a) {
		t.Error("seeds 42 and 43 gave the same schedule")
	}
	for _, s := range a {
		if s.Fault == FaultKillStandby || s.Fault == FaultStateDiskFull || s.Fault == FaultHomeserver || s.Matrix {
			t.Errorf("step %s: not a fault of one replica on PostgreSQL without Matrix", s)
		}
	}
	// With Matrix, some callers are on Matrix and some faults restart the
	// homeserver; every other step is the one the seed gives without.
	m := Schedule(42, 50, StorePostgres, 1, true)
	onMatrix, restarts := 0, 0
	for i, s := range m {
		if s.Matrix {
			onMatrix++
		}
		if s.Fault == FaultHomeserver {
			restarts++
			continue
		}
		s.Matrix = false
		if s != a[i] {
			t.Errorf("step %d with Matrix: %s, without: %s", i+1, s, a[i])
		}
	}
	if onMatrix == 0 || onMatrix == len(m) || restarts == 0 {
		t.Errorf("with Matrix: %d callers of %d on Matrix, %d homeserver restarts", onMatrix, len(m), restarts)
	}
	for _, s := range Schedule(42, 50, StoreSQLite, 2, true) {
		if s.Fault == FaultStateDB {
			t.Errorf("step %s: a SQLite run has no state database to restart", s)
		}
	}
}

// TestEndsCommand: the Matrix answers that end a command (two of them
// to one command break invariant 4), and those that do not.
func TestEndsCommand(t *testing.T) {
	for text, want := range map[string]bool{
		"confirm: clean-up plan for xenbuilder4: stop kojid\nto go ahead: !koji confirm exetszg7 (within 5m0s; only you, here)": true,
		"job 2 (cleanup xenbuilder4) done in 4s":                                                               true,
		"error: job 2 (cleanup xenbuilder4) failed after 4s: ssh":                                              true,
		"error: interrupted: kojibot stopped before \"capacity ppc1 2.06\" finished and will not run it again": true,
		"error: not run: sent 3m0s before it reached kojibot (matrix.max_delay is 2m0s)":                       true,
		"ppc1.fedora.redhat.com capacity 2 → 2.06 (load 0)":                                                    true,
		"xenbuilder1 already has memory = 4096 MiB; nothing changed":                                           true,
		"xenbuilder4 before: /var/lib/mock 0% (32.0 MiB free), /mnt/build 0% (16.0 MiB free)":                  false,
		"job 2 started: cleanup xenbuilder4 (cancel 2 to stop it)":                                             false,
	} {
		if got := endsCommand(text); got != want {
			t.Errorf("endsCommand(%q) = %v, want %v", text, got, want)
		}
	}
}
