package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// The state stores a run can use.
const (
	StorePostgres = "postgres"
	StoreSQLite   = "sqlite"
)

// Job is one of the SOP's jobs the run drives through the bot.
type Job string

// The jobs.
const (
	JobCleanup         Job = "cleanup"          // cleanup <builder>, confirmed
	JobRestartBuilders Job = "restart-builders" // restart builders <builder>, confirmed
	JobRestartAll      Job = "restart-all"      // restart all, confirmed
	JobMemoryShow      Job = "memory"           // memory <guest>
	JobMemorySet       Job = "memory-set"       // memory <guest> <size>, confirmed
	JobReboot          Job = "reboot"           // reboot <guest>, confirmed
	JobCapacity        Job = "capacity"         // capacity <host> <value>
	JobOverride        Job = "override"         // override <release> <nvr>
)

// Fault is a kind of fault the run injects.
type Fault string

// The faults.
const (
	FaultKillLeader    Fault = "kill-leader"        // SIGKILL of the acting kojibot run
	FaultKillStandby   Fault = "kill-standby"       // SIGKILL of a standby (two replicas)
	FaultKillExec      Fault = "kill-exec"          // SIGKILL of a kojibot exec restarting a builder
	FaultKojiDB        Fault = "pg-koji"            // the Koji hub's PostgreSQL stopped and started
	FaultStateDB       Fault = "pg-state"           // the bot's own PostgreSQL stopped and started
	FaultIRC           Fault = "irc-restart"        // InspIRCd and Anope restarted
	FaultHomeserver    Fault = "homeserver-restart" // Dendrite restarted (runs with Matrix)
	FaultSSHDKill      Fault = "sshd-kill"          // a builder's sshd sessions SIGKILLed
	FaultReboot        Fault = "builder-reboot"     // a builder rebooted
	FaultNetCut        Fault = "net-cut"            // a builder's network cut
	FaultNetSlow       Fault = "net-slow"           // a builder's network slowed
	FaultNetReset      Fault = "net-reset"          // a builder's connections reset
	FaultStateDiskFull Fault = "statefs-full"       // state.dir's filesystem full (SQLite)
)

// Faults are the faults a run of store with replicas can inject; a run
// with Matrix can also restart the homeserver (see Schedule).
func Faults(store string, replicas int) []Fault {
	fs := []Fault{FaultKillLeader, FaultKillExec, FaultKojiDB, FaultIRC, FaultSSHDKill, FaultReboot,
		FaultNetCut, FaultNetSlow, FaultNetReset}
	if replicas > 1 {
		fs = append(fs, FaultKillStandby)
	}
	if store == StoreSQLite {
		fs = append(fs, FaultStateDiskFull)
	} else {
		fs = append(fs, FaultStateDB)
	}
	return fs
}

// jobWeights: how often each job comes (the long ones less often).
var jobWeights = []struct {
	job Job
	w   int
}{
	{JobCleanup, 4}, {JobRestartBuilders, 3}, {JobRestartAll, 1}, {JobMemoryShow, 1}, {JobMemorySet, 1},
	{JobReboot, 1}, {JobCapacity, 3}, {JobOverride, 2},
}

// guests are the builders with a xen host (memory, reboot through xl).
var guests = []string{"xenbuilder1", "xenbuilder2"}

// capacityHosts are the Koji hosts whose capacity the run changes.
var capacityHosts = []string{"ppc1.fedora.redhat.com", "ppc2.fedora.redhat.com", "x86-01.iad2.fedoraproject.org"}

// overrides are the release and build pairs override tags (the farm's
// hub has each build; the run untags it first).
var overrides = [][2]string{{"f8", "foo-1.0-1"}, {"f8", "bar-1.0-1"}, {"f41", "foo-1.0-1.fc41"}}

// Step is one job and the fault injected while it runs.
type Step struct {
	N      int
	Job    Job
	Target string // the builder, guest or host the job is about
	// Arg is the job's value: the capacity, the memory size, the
	// release of an override.
	Arg   string
	Fault Fault
	// Matrix: the caller is on Matrix (in the room), not on IRC.
	Matrix bool
	// FaultTarget is the builder of a builder fault, or of kill-exec's job.
	FaultTarget string
	// After is how long after the anchor the fault comes.
	After time.Duration
	// AtJob anchors the fault at the job's start ("job N started"), so
	// that it hits the job mid-way; else at the command's sending (the
	// plan, the confirmation).
	AtJob bool
	// Hold is how long a fault with a duration lasts (cut, slow, a
	// server down, a full disk).
	Hold time.Duration
	// Slow is the delay per chunk of net-slow.
	Slow time.Duration
}

// ConfirmAcrossKill reports whether the step's caller holds its
// confirmation until the fault is over: a clean-up whose leader is killed
// after the command was sent is confirmed on the replica (or the
// restarted bot) that takes over, from the state store.
func (s Step) ConfirmAcrossKill() bool {
	return s.Job == JobCleanup && s.Fault == FaultKillLeader && !s.AtJob
}

// Command is the text the step's caller sends to the bot.
func (s Step) Command() string {
	switch s.Job {
	case JobCleanup:
		return "cleanup " + s.Target
	case JobRestartBuilders:
		return "restart builders " + s.Target
	case JobRestartAll:
		return "restart all"
	case JobMemoryShow:
		return "memory " + s.Target
	case JobMemorySet:
		return "memory " + s.Target + " " + s.Arg
	case JobReboot:
		return "reboot " + s.Target
	case JobCapacity:
		return "capacity " + s.Target + " " + s.Arg
	case JobOverride:
		return "override " + s.Arg + " " + s.Target
	}
	return string(s.Job)
}

// Confirmed reports whether the step's command asks for a confirmation.
func (s Step) Confirmed() bool {
	switch s.Job {
	case JobCleanup, JobRestartBuilders, JobRestartAll, JobMemorySet, JobReboot:
		return true
	}
	return false
}

// String is the step as the schedule prints it.
func (s Step) String() string {
	f := string(s.Fault)
	if s.FaultTarget != "" {
		f += " " + s.FaultTarget
	}
	if s.Hold > 0 {
		f += fmt.Sprintf(" hold=%s", s.Hold)
	}
	if s.Slow > 0 {
		f += fmt.Sprintf(" slow=%s", s.Slow)
	}
	anchor := "sent"
	if s.AtJob {
		anchor = "job"
	}
	on := ""
	if s.Matrix {
		on = " on matrix"
	}
	return fmt.Sprintf("#%d %q%s + %s at %s+%s", s.N, s.Command(), on, f, anchor, s.After)
}

// Schedule is the steps a seed gives: the same seed, store, replicas,
// Matrix and count give the same schedule. With Matrix, a second stream
// of the seed puts one caller in three on Matrix and makes one fault in
// len(Faults)+1 a homeserver restart; the rest of each step is drawn as
// without Matrix, so a seed's IRC schedule stays what it was.
func Schedule(seed int64, faults int, store string, replicas int, matrix bool) []Step {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x6b6f6a69626f74))
	mrng := rand.New(rand.NewPCG(uint64(seed)^0x6d6174726978, uint64(seed)))
	kinds := Faults(store, replicas)
	total := 0
	for _, jw := range jobWeights {
		total += jw.w
	}
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	dur := func(lo, hi time.Duration) time.Duration {
		return (lo + time.Duration(rng.Int64N(int64(hi-lo)))).Round(100 * time.Millisecond)
	}
	var steps []Step
	for n := 1; n <= faults; n++ {
		s := Step{N: n}
		w := rng.IntN(total)
		for _, jw := range jobWeights {
			if w < jw.w {
				s.Job = jw.job
				break
			}
			w -= jw.w
		}
		switch s.Job {
		case JobCleanup, JobRestartBuilders:
			s.Target = pick(sandbox.Builders)
		case JobMemoryShow, JobReboot:
			s.Target = pick(guests)
		case JobMemorySet:
			s.Target = pick(guests)
			s.Arg = fmt.Sprint(4096 + 512*rng.IntN(8))
		case JobCapacity:
			s.Target = pick(capacityHosts)
			// A value of this step alone, so that the hub's history
			// shows how often it was set.
			s.Arg = fmt.Sprintf("%.2f", 2+float64(n%800)/100)
		case JobOverride:
			o := overrides[rng.IntN(len(overrides))]
			s.Arg, s.Target = o[0], o[1]
		}
		s.Fault = kinds[rng.IntN(len(kinds))]
		s.AtJob = rng.IntN(4) != 0
		s.After = dur(0, 2*time.Second)
		switch s.Fault {
		case FaultSSHDKill, FaultReboot, FaultNetCut, FaultNetSlow, FaultNetReset, FaultKillExec:
			// Mostly the job's own builder.
			if slices.Contains(sandbox.Builders, s.Target) && rng.IntN(10) < 7 && s.Fault != FaultKillExec {
				s.FaultTarget = s.Target
			} else {
				s.FaultTarget = pick(sandbox.Builders)
			}
			if s.Fault == FaultKillExec && s.FaultTarget == s.Target {
				// exec restarts another builder than the job's, so
				// that each builder's services journal says whose
				// restart it was.
				i := slices.Index(sandbox.Builders, s.Target)
				s.FaultTarget = sandbox.Builders[(i+1)%len(sandbox.Builders)]
			}
		}
		switch s.Fault {
		case FaultNetCut:
			s.Hold = dur(time.Second, 8*time.Second)
		case FaultNetSlow:
			s.Hold = dur(2*time.Second, 8*time.Second)
			s.Slow = dur(100*time.Millisecond, 500*time.Millisecond)
		case FaultKojiDB, FaultStateDB, FaultStateDiskFull:
			s.Hold = dur(500*time.Millisecond, 5*time.Second)
		case FaultKillExec:
			s.Hold = dur(50*time.Millisecond, time.Second) // how long exec runs before the kill
		}
		if matrix {
			s.Matrix = mrng.IntN(3) == 0
			if mrng.IntN(len(kinds)+1) == 0 {
				s.Fault, s.FaultTarget, s.Hold, s.Slow = FaultHomeserver, "", 0, 0
			}
		}
		steps = append(steps, s)
	}
	return steps
}

// FormatSchedule is the steps, one a line.
func FormatSchedule(steps []Step) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString("  " + s.String() + "\n")
	}
	return b.String()
}
