package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// RestartAfter is how long the supervisor (systemd's Restart=always, or
// OpenShift) waits before it starts a killed replica again.
const RestartAfter = time.Second

// Replica is one `kojibot run` process slot: a configuration (the same
// but for its HTTP port) and the process now running it, restarted by
// the supervisor after a kill.
type Replica struct {
	Name   string
	Config string
	Port   int

	mu       sync.Mutex
	bot      *sandbox.Bot
	restarts int
}

// Role is what a replica's /healthz says it is.
type Role string

// The roles.
const (
	// RoleDown: nothing answers on its port.
	RoleDown Role = "down"
	// RoleStandby: it answers "standby".
	RoleStandby Role = "standby"
	// RoleLeader: it answers anything else (ok, or a part down).
	RoleLeader Role = "leader"
)

// Replicas are the `kojibot run` processes of one configuration. With one
// replica it is the leader whenever it runs; with two or more, /healthz
// tells the leader from the standbys.
type Replicas struct {
	sb     *sandbox.Sandbox
	binary string
	list   []*Replica
	wg     sync.WaitGroup
	closed chan struct{}
	// killedMu guards killed, which the supervisors read.
	killedMu sync.Mutex
	// killed is called with the time of each kill or exit (the
	// disruption timeline).
	killed func(string, time.Time)
}

// newReplicas prepares one replica per port, each with a copy of config
// listening on its own port.
func newReplicas(sb *sandbox.Sandbox, binary, config string, ports []int) *Replicas {
	r := &Replicas{sb: sb, binary: binary, closed: make(chan struct{})}
	for i, p := range ports {
		r.list = append(r.list, &Replica{Name: fmt.Sprintf("r%d", i+1), Config: config, Port: p})
	}
	return r
}

// start writes each replica's configuration and starts them all.
func (r *Replicas) start(ctx context.Context) error {
	base, err := os.ReadFile(r.list[0].Config)
	if err != nil {
		return err
	}
	first := fmt.Sprintf("127.0.0.1:%d", r.list[0].Port)
	for _, rep := range r.list {
		dir := filepath.Join(filepath.Dir(rep.Config), rep.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		path := filepath.Join(dir, "kojibot.yaml")
		text := strings.Replace(string(base), first, fmt.Sprintf("127.0.0.1:%d", rep.Port), 1)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return err
		}
		rep.Config = path
		if err := r.launch(rep); err != nil {
			return err
		}
	}
	return nil
}

// launch starts rep's process and supervises it as systemd's
// Restart=always or OpenShift does: whenever it ends — killed, or exited
// by itself, as a leader that lost its lock does — it is started again
// after RestartAfter, until stop.
func (r *Replicas) launch(rep *Replica) error {
	b, err := r.sb.StartBot(r.binary, Nick, rep.Config)
	if err != nil {
		return err
	}
	rep.mu.Lock()
	rep.bot = b
	rep.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for !b.Exited() {
			select {
			case <-r.closed:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		// Killed or not (a leader that lost its lock exits by itself), it
		// went away: its callers may be left without an answer.
		r.gone(rep.Name+" exited", time.Now())
		select {
		case <-r.closed:
			return
		case <-time.After(RestartAfter):
		}
		rep.mu.Lock()
		rep.restarts++
		rep.mu.Unlock()
		for r.launch(rep) != nil {
			select {
			case <-r.closed:
				return
			case <-time.After(RestartAfter):
			}
		}
	}()
	return nil
}

// List is every replica.
func (r *Replicas) List() []*Replica { return r.list }

// Role asks rep's /healthz what it is.
func (r *Replicas) Role(ctx context.Context, rep *Replica) Role {
	if b := rep.Bot(); b == nil || b.Exited() {
		return RoleDown
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/healthz", rep.Port), nil)
	if err != nil {
		return RoleDown
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return RoleDown
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if strings.Contains(strings.ToLower(string(body)), "standby") {
		return RoleStandby
	}
	return RoleLeader
}

// Leader is the replica that acts: the only live one when there is one
// replica, else the one whose /healthz is not "standby" (nil if none).
func (r *Replicas) Leader(ctx context.Context) *Replica {
	if len(r.list) == 1 {
		if b := r.list[0].Bot(); b != nil && !b.Exited() {
			return r.list[0]
		}
		return nil
	}
	for _, rep := range r.list {
		if r.Role(ctx, rep) == RoleLeader {
			return rep
		}
	}
	return nil
}

// Standby is a live replica that is not the leader (nil with one replica).
func (r *Replicas) Standby(ctx context.Context) *Replica {
	if len(r.list) < 2 {
		return nil
	}
	for _, rep := range r.list {
		if r.Role(ctx, rep) == RoleStandby {
			return rep
		}
	}
	return nil
}

// Bot is the process now running rep.
func (rep *Replica) Bot() *sandbox.Bot {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	return rep.bot
}

// Kill SIGKILLs rep's process; its supervisor (launch) starts it again
// after RestartAfter. It returns once the process has ended.
func (r *Replicas) Kill(rep *Replica) error {
	b := rep.Bot()
	if b == nil || b.Exited() {
		return fmt.Errorf("chaos: replica %s is not running", rep.Name)
	}
	if err := syscall.Kill(b.PID(), syscall.SIGKILL); err != nil {
		return err
	}
	at := time.Now()
	for !b.Exited() {
		time.Sleep(10 * time.Millisecond)
	}
	r.gone(rep.Name, at)
	return nil
}

// Alive is how many replicas have a running process.
func (r *Replicas) Alive() int {
	n := 0
	for _, rep := range r.list {
		if b := rep.Bot(); b != nil && !b.Exited() {
			n++
		}
	}
	return n
}

// Output is what every replica's processes wrote (stderr of the current
// one and the shared log file), for a failure.
func (r *Replicas) Output() string {
	var b strings.Builder
	for _, rep := range r.list {
		if bot := rep.Bot(); bot != nil {
			fmt.Fprintf(&b, "---- replica %s ----\n%s\n", rep.Name, bot.Output())
		}
	}
	return b.String()
}

// stop ends the supervisor and every replica.
func (r *Replicas) stop() {
	close(r.closed)
	r.wg.Wait()
	for _, rep := range r.list {
		if b := rep.Bot(); b != nil {
			b.Stop()
		}
	}
}

// onGone sets what is called with the time of each kill or exit.
func (r *Replicas) onGone(f func(string, time.Time)) {
	r.killedMu.Lock()
	defer r.killedMu.Unlock()
	r.killed = f
}

// gone tells the onGone function that what went away at at.
func (r *Replicas) gone(what string, at time.Time) {
	r.killedMu.Lock()
	f := r.killed
	r.killedMu.Unlock()
	if f != nil {
		f(what, at)
	}
}
