// Command sweep times the watcher's builder-mount check over a large farm
// of real sshd builders: cold (new connections and SFTP sessions) and warm
// (cached ones), and the bot side's memory with every connection open.
//
// It starts -builders (default 500) builders with the tests' builders
// harness — one OpenSSH sshd each on its own loopback address, in its own
// namespaces with tmpfs mounts — or as many as the machine's memory
// allows: a probe farm of 50 measures what a builder costs in
// MemAvailable, and the farm is sized to leave -reserve MiB. It prints how
// many it started. It then runs the bot side in a child process of its own
// (this program with -client), so that the memory figure is the bot's and
// not the harness's: a commands/watch Watcher over a commands/fleet Fleet
// with ssh.parallel -parallel (default 64), timing one cold check round (a
// new Fleet) and -rounds warm ones, each with the builders' CPU, then
// reporting the bot's RSS with every connection open.
//
// A host that fails or times out does not stop the benchmark: the failed
// hosts are counted and printed with their errors per round, and the round
// is timed with them.
//
// It needs root. Every sshd it starts is stopped when it ends (the
// harness's parent-death signal takes the builders down if it is killed).
//
//	go run ./tests/bench/sweep -builders 500 -parallel 64 -rounds 5
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/watch"
	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/bench/subsystem"
	"github.com/fedora-infra/kojibot/tests/harness/builders"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "-client" {
		err = client(os.Args[2:])
	} else {
		err = run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweep:", err)
		os.Exit(1)
	}
}

// job is what the parent hands the client process.
type job struct {
	Hosts      map[string]config.Host
	SSH        config.SSH
	Mounts     []string
	Rounds     int
	CPUProfile string
	MemProfile string
	Pause      time.Duration
}

// roundResult is one timed check round, as the client reports it.
type roundResult struct {
	Name   string
	Took   time.Duration
	Hosts  int
	Failed map[string]string // host → error
	RSSKiB int64
	HWMKiB int64
	Heap   uint64
	Gor    int
	// ServerCPU is the builders' CPU from the previous round's end to
	// this one's (measured by the parent).
	ServerCPU time.Duration
	// ServerLive is the run time of the builders' live processes over the
	// same span (exact when no process started or ended).
	ServerLive time.Duration
	// MemAvailMiB is the machine's MemAvailable after the round.
	MemAvailMiB int64
}

func run() error {
	n := flag.Int("builders", 500, "sshd builders to start (fewer when memory runs short)")
	parallel := flag.Int("parallel", 64, "ssh.parallel")
	rounds := flag.Int("rounds", 5, "warm rounds")
	reserve := flag.Int("reserve", 2048, "MiB of MemAvailable to leave when sizing the farm")
	sub := flag.String("subsystem", "sftp-server", "the builders' sftp subsystem: sftp-server, internal-sftp, or none (kojibot then runs df)")
	connectTimeout := flag.Duration("connect-timeout", 10*time.Second, "ssh.connect_timeout")
	pause := flag.Duration("pause", time.Second, "idle time after each round, so that the builders' CPU of one round is measured apart from the next")
	cpuProfile := flag.String("cpuprofile", "", "write the client's CPU profile (cold and warm rounds) to this file")
	memProfile := flag.String("memprofile", "", "write the client's heap profile (after the last round) to this file")
	flag.Parse()
	lines := map[string]string{"sftp-server": subsystem.SFTPServer, "internal-sftp": subsystem.Internal, "none": ""}
	line, ok := lines[*sub]
	if !ok || *n < 1 || *parallel < 1 || *rounds < 1 || flag.NArg() > 0 {
		return errors.New("want -builders ≥ 1, -parallel ≥ 1, -rounds ≥ 1, -subsystem sftp-server|internal-sftp|none, no arguments")
	}
	if os.Geteuid() != 0 {
		return errors.New("must run as root (sshd, unshare, tmpfs mounts)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "kojibot-bench-sweep-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// How many builders fit: a probe farm's cost per idle builder, then
	// one farm of as many as fit in MemAvailable less -reserve.
	count, err := fitting(ctx, dir, *n, int64(*reserve), line)
	if err != nil {
		return err
	}
	t0 := time.Now()
	avail0 := memAvailableMiB()
	specs := make([]builders.Spec, count)
	for i := range specs {
		specs[i] = builders.Spec{Name: fmt.Sprintf("b%03d", i+1), MockMiB: 8, BuildMiB: 16}
	}
	fdir := filepath.Join(dir, "farm")
	if err := os.MkdirAll(fdir, 0o755); err != nil {
		return err
	}
	farm, err := builders.Start(ctx, fdir, specs)
	if err != nil {
		return err
	}
	defer farm.Stop()
	if err := setSubsystems(ctx, farm, fdir, line); err != nil {
		return err
	}
	started := count
	avail1 := memAvailableMiB()
	fmt.Printf("builders: %d of %d asked started in %s (subsystem %s); MemAvailable %d → %d MiB\n",
		started, *n, time.Since(t0).Round(time.Second), *sub, avail0, avail1)
	sshCfg := farm.SSH()
	sshCfg.Parallel = *parallel
	sshCfg.ConnectTimeout = *connectTimeout
	hosts := farm.Hosts()

	j := job{Hosts: hosts, SSH: sshCfg, Mounts: []string{builders.MockDir, builders.BuildDir}, Rounds: *rounds, CPUProfile: *cpuProfile, MemProfile: *memProfile, Pause: *pause}
	jobPath := filepath.Join(dir, "job.json")
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if err := os.WriteFile(jobPath, b, 0o600); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("bot side: a Watcher over a Fleet, ssh.parallel %d, connect timeout %s, %d CPUs\n", *parallel, *connectTimeout, runtime.NumCPU())
	cmd := exec.CommandContext(ctx, self, "-client", jobPath)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	before, beforeLive := sshdCPU(dir)
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 256<<20) // a round with many failed hosts is a long line
	var results []roundResult
	var warmCPU time.Duration
	last, lastLive := before, beforeLive
	for sc.Scan() {
		var r roundResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			fmt.Println(sc.Text())
			continue
		}
		now, nowLive := sshdCPU(dir)
		r.ServerCPU, last = now-last, now
		r.ServerLive, lastLive = nowLive-lastLive, nowLive
		r.MemAvailMiB = memAvailableMiB()
		if len(results) > 0 {
			warmCPU += r.ServerLive
		}
		results = append(results, r)
		report(r)
	}
	werr := cmd.Wait()
	if werr != nil {
		return fmt.Errorf("client: %w", werr)
	}
	var warm []time.Duration
	for _, r := range results[1:] {
		warm = append(warm, r.Took)
	}
	slices.Sort(warm)
	if len(results) > 1 {
		fmt.Printf("summary: %d builders, parallel %d: cold %s, warm median %s (min %s, max %s), bot RSS %d KiB (peak %d KiB) with %d connections open; builders' CPU in warm rounds (run time of their live processes) %s (%.3f ms per check)\n",
			started, *parallel, results[0].Took.Round(time.Millisecond), warm[len(warm)/2].Round(time.Millisecond),
			warm[0].Round(time.Millisecond), warm[len(warm)-1].Round(time.Millisecond),
			results[len(results)-1].RSSKiB, results[len(results)-1].HWMKiB, started-len(results[len(results)-1].Failed),
			warmCPU.Round(time.Millisecond), float64(warmCPU.Microseconds())/1000/float64(started*(len(results)-1)))
	}
	return nil
}

// report prints one round.
func report(r roundResult) {
	fmt.Printf("%-6s %4d hosts in %8s, %d failed; builders' CPU %s (ticks), %s (live processes' run time); bot RSS %d KiB (peak %d KiB), heap %d KiB, %d goroutines; MemAvailable %d MiB\n",
		r.Name, r.Hosts, r.Took.Round(time.Millisecond), len(r.Failed), r.ServerCPU, r.ServerLive.Round(time.Millisecond), r.RSSKiB, r.HWMKiB, r.Heap>>10, r.Gor, r.MemAvailMiB)
	names := make([]string, 0, len(r.Failed))
	for h := range r.Failed {
		names = append(names, h)
	}
	sort.Strings(names)
	for i, h := range names {
		if i == 20 {
			fmt.Printf("  … and %d more\n", len(names)-20)
			break
		}
		fmt.Printf("  failed %s: %s\n", h, r.Failed[h])
	}
}

// setSubsystems sets every builder of farm's Subsystem line, a few at a
// time.
func setSubsystems(ctx context.Context, farm *builders.Farm, dir, line string) error {
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, name := range farm.Names() {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := subsystem.Set(ctx, farm, dir, name, line); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fitting starts a probe farm of up to 50 builders, measures what an idle
// builder costs in MemAvailable, stops it, and returns how many of want
// builders fit while leaving reserve MiB.
func fitting(ctx context.Context, dir string, want int, reserve int64, line string) (int, error) {
	k := min(50, want)
	specs := make([]builders.Spec, k)
	for i := range specs {
		specs[i] = builders.Spec{Name: fmt.Sprintf("probe%02d", i+1), MockMiB: 8, BuildMiB: 16}
	}
	pdir := filepath.Join(dir, "probe")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return 0, err
	}
	before := memAvailableMiB()
	farm, err := builders.Start(ctx, pdir, specs)
	if err != nil {
		return 0, fmt.Errorf("probe farm: %w", err)
	}
	err = setSubsystems(ctx, farm, pdir, line)
	after := memAvailableMiB()
	farm.Stop()
	if err != nil {
		return 0, err
	}
	per := max(float64(before-after)/float64(k), 0.5) // MiB; never trust a drop of nothing
	fit := int(float64(before-reserve) / (3 * per))   // ×3: a connected builder has its connection's processes too
	fmt.Printf("memory: an idle builder costs %.1f MiB of MemAvailable (probe of %d); %d MiB available, %d MiB kept in reserve: room for %d connected builders\n",
		per, k, before, reserve, fit)
	return max(1, min(want, fit)), nil
}

// memAvailableMiB reads MemAvailable from /proc/meminfo.
func memAvailableMiB() int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemAvailable:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kib >> 10
		}
	}
	return 0
}

// sshdCPU sums the CPU time of every process in the PID namespaces of the
// builders whose sshd command line names dir: ticks is user+system (own
// and reaped children's) from /proc/PID/stat, each process's in whole
// 1/100 s, so that many processes each doing a little read as nothing;
// live is the exact run time (/proc/PID/schedstat, ns) of the processes
// alive now, right for rounds in which no process starts or ends.
func sshdCPU(dir string) (ticks, live time.Duration) {
	ents, _ := os.ReadDir("/proc")
	namespaces := map[string]bool{}
	var pids []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		pids = append(pids, e.Name())
		cl, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(string(cl), "\x00")
		if strings.Contains(string(cl), dir+"/") && (strings.HasPrefix(first, "sshd:") || filepath.Base(first) == "sshd") {
			if ns, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil {
				namespaces[ns] = true
			}
		}
	}
	var n int64
	for _, pid := range pids {
		ns, err := os.Readlink("/proc/" + pid + "/ns/pid")
		if err != nil || !namespaces[ns] {
			continue
		}
		if ss, err := os.ReadFile("/proc/" + pid + "/schedstat"); err == nil {
			f := strings.Fields(string(ss))
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				live += time.Duration(v)
			}
		}
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			continue
		}
		s := string(st)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 15 {
			continue
		}
		for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			v, _ := strconv.ParseInt(f[k], 10, 64)
			n += v
		}
	}
	return time.Duration(n) * 10 * time.Millisecond, live
}

// client is the bot side: it runs the watcher's check rounds and prints
// one JSON line per round.
func client(args []string) error {
	if len(args) != 1 {
		return errors.New("-client JOBFILE")
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var j job
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.CPUProfile != "" {
		pf, err := os.Create(j.CPUProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	f, err := fleet.New(j.SSH, j.Hosts, nil)
	if err != nil {
		return err
	}
	defer f.Close()
	names := make([]string, 0, len(j.Hosts))
	for n := range j.Hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	cfg := config.Default()
	cfg.Disk.Mounts = j.Mounts
	cfg.SSH = j.SSH
	cfg.Watch.Interval = 10 * time.Minute // a round may take up to 9 minutes
	rec := &recorder{d: f}
	w := watch.New(cfg, watch.Deps{
		Disk:     rec,
		Builders: func() []string { return names },
		Notify:   func(reply.Message) bool { return true },
	})
	enc := json.NewEncoder(os.Stdout)
	for i := 0; i <= j.Rounds; i++ {
		rec.reset()
		t0 := time.Now()
		w.CheckOnce(context.Background())
		took := time.Since(t0)
		r := roundResult{Name: "warm", Took: took, Hosts: len(names), Failed: rec.failed()}
		if i == 0 {
			r.Name = "cold"
		}
		r.RSSKiB, r.HWMKiB = rss()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		r.Heap, r.Gor = ms.HeapAlloc, runtime.NumGoroutine()
		if err := enc.Encode(r); err != nil {
			return err
		}
		time.Sleep(j.Pause)
	}
	if j.MemProfile != "" {
		pf, err := os.Create(j.MemProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		runtime.GC()
		if err := pprof.WriteHeapProfile(pf); err != nil {
			return err
		}
	}
	return nil
}

// recorder is the watcher's DiskReader: the Fleet, noting each host's
// failure.
type recorder struct {
	d  *fleet.Fleet
	mu sync.Mutex
	f  map[string]string
}

// DiskUsage implements watch.DiskReader.
func (r *recorder) DiskUsage(ctx context.Context, host string, paths []string) ([]fleet.Usage, error) {
	u, err := r.d.DiskUsage(ctx, host, paths)
	if err == nil && len(u) != len(paths) {
		err = fmt.Errorf("%d usages for %d paths", len(u), len(paths))
	}
	if err != nil {
		r.mu.Lock()
		r.f[host] = err.Error()
		r.mu.Unlock()
	}
	return u, err
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.f = map[string]string{}
	r.mu.Unlock()
}

func (r *recorder) failed() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f
}

// rss returns this process's VmRSS and VmHWM in KiB.
func rss() (int64, int64) {
	b, _ := os.ReadFile("/proc/self/status")
	var cur, peak int64
	for _, l := range strings.Split(string(b), "\n") {
		field := func(name string) (int64, bool) {
			v, ok := strings.CutPrefix(l, name)
			if !ok {
				return 0, false
			}
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n, true
		}
		if v, ok := field("VmRSS:"); ok {
			cur = v
		}
		if v, ok := field("VmHWM:"); ok {
			peak = v
		}
	}
	return cur, peak
}
