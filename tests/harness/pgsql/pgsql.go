// Package pgsql runs a throwaway PostgreSQL cluster on loopback and fills
// databases in it with a Koji hub schema of either generation, for kojibot's
// tests and the `make demo` sandbox. Nothing here needs a *testing.T.
package pgsql

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/tests/harness"
)

// MaxConnections is the max_connections every cluster started here runs with.
const MaxConnections = 100

// TimeZone is the cluster's default time zone. It is deliberately not UTC so
// that code reading TIMESTAMP WITHOUT TIME ZONE columns as UTC shows up wrong.
const TimeZone = "America/New_York"

// OSUser is the operating-system account the server runs as when the caller
// is root (PostgreSQL refuses to run as root).
const OSUser = "postgres"

// Superuser is the cluster's bootstrap superuser, used by AdminDSN.
const Superuser = "postgres"

// Cluster is one PostgreSQL cluster: a data directory and, while it runs, the
// postmaster serving it on 127.0.0.1:Port(). A Cluster is safe for
// concurrent use.
type Cluster struct {
	dir  string
	data string
	sock string
	bin  string
	port int

	mu   sync.Mutex // guards proc and done, serialises role creation
	proc *os.Process
	done chan struct{}
}

// Start creates a new cluster in dir (created if needed; it must be reachable
// by the postgres user, as a directory made by os.MkdirTemp is), with trust
// authentication, UTF8 encoding and the C locale, then starts it on a free
// loopback port with its unix socket inside dir, and returns once it accepts
// connections. The data lives in dir/data and the server log in
// dir/postgres.log. The caller stops it with Stop and removes dir.
func Start(ctx context.Context, dir string) (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgsql: %w", err)
	}
	c := &Cluster{dir: dir, data: filepath.Join(dir, "data"), sock: filepath.Join(dir, "sock"), bin: bin}
	if err := os.MkdirAll(c.sock, 0o700); err != nil {
		return nil, fmt.Errorf("pgsql: %w", err)
	}
	if err := harness.Chown(dir, OSUser); err != nil {
		return nil, fmt.Errorf("pgsql: chown %s: %w", dir, err)
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", c.data, "-U", Superuser, "--auth=trust", "-E", "UTF8", "--locale=C",
		"--no-sync", "--no-instructions")
	initdb.Dir = dir
	if err := harness.AsUser(initdb, OSUser); err != nil {
		return nil, fmt.Errorf("pgsql: %w", err)
	}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgsql: initdb %s: %w\n%s", c.data, err, out)
	}
	// Another process may take the port first: try a few.
	for range 5 {
		c.port, err = freePort()
		if err != nil {
			return nil, err
		}
		if err = c.Start(ctx); !errors.Is(err, errPortTaken) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

var errPortTaken = errors.New("port already in use")

// freePort picks a random free loopback port below Linux's ephemeral range.
// harness.FreePort walks ports from a base derived from the process id, so
// two test binaries started together hand out the same ports, and a cluster
// must keep its port across a restart.
func freePort() (int, error) {
	for range 200 {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.New("pgsql: no free port")
}

// Start starts the postmaster again on the cluster's port and data, after
// Stop, and returns once it accepts connections.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		return errors.New("pgsql: cluster already running")
	}
	logf, err := os.OpenFile(filepath.Join(c.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgsql: %w", err)
	}
	defer logf.Close()
	var logStart int64
	if fi, err := logf.Stat(); err == nil {
		logStart = fi.Size()
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"),
		"-D", c.data,
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+c.sock,
		"-c", "max_connections="+strconv.Itoa(MaxConnections),
		"-c", "timezone="+TimeZone,
		"-c", "log_timezone=UTC",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "logging_collector=off",
		"-c", "autovacuum=off",
	)
	cmd.Dir = c.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Own process group: a ^C on the test run must not reach the postmaster
	// before Stop does. If the test binary dies without Stop, the
	// postmaster gets SIGINT (fast shutdown) instead of living on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT}
	if err := harness.AsUser(cmd, OSUser); err != nil {
		return fmt.Errorf("pgsql: %w", err)
	}
	if err := harness.Spawn(cmd); err != nil {
		return fmt.Errorf("pgsql: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.proc, c.done = cmd.Process, done

	exited := false
	ok := harness.WaitFor(ctx, 60*time.Second, func() bool {
		select {
		case <-done:
			exited = true
			return true
		default:
		}
		return c.ping(ctx) == nil
	})
	if exited || !ok {
		c.stopLocked()
		log := c.logSince(logStart)
		err := fmt.Errorf("pgsql: postgres on port %d did not come up (exited=%v); log:\n%s", c.port, exited, log)
		if strings.Contains(log, "could not create any TCP/IP sockets") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return err
	}
	return nil
}

// Stop shuts the postmaster down ("fast" shutdown: open sessions are
// disconnected) and waits for it to exit; it escalates to an immediate
// shutdown and then SIGKILL if it hangs. Stopping a stopped cluster does
// nothing.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked()
}

func (c *Cluster) stopLocked() {
	if c.proc == nil {
		return
	}
	steps := []struct {
		sig  os.Signal
		wait time.Duration
	}{{syscall.SIGINT, 60 * time.Second}, {syscall.SIGQUIT, 10 * time.Second}, {syscall.SIGKILL, 10 * time.Second}}
	for _, s := range steps {
		_ = c.proc.Signal(s.sig)
		select {
		case <-c.done:
			c.proc, c.done = nil, nil
			return
		case <-time.After(s.wait):
		}
	}
	c.proc, c.done = nil, nil
}

// Running reports whether the postmaster started by Start is still alive.
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Port is the TCP port the cluster listens on, on 127.0.0.1. It stays the
// same across Stop and Start.
func (c *Cluster) Port() int { return c.port }

// Dir is the directory the cluster lives in.
func (c *Cluster) Dir() string { return c.dir }

// MaxConnections is the cluster's max_connections setting.
func (c *Cluster) MaxConnections() int { return MaxConnections }

// AdminDSN is a connection URL for database db as the superuser.
func (c *Cluster) AdminDSN(db string) string {
	return c.dsn(Superuser, "", db)
}

func (c *Cluster) dsn(user, password, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		Host:     "127.0.0.1:" + strconv.Itoa(c.port),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// ping checks that this cluster's own postmaster accepts connections. It
// goes through the unix socket in the cluster's directory and checks the
// data directory, so that another server that took the port is not mistaken
// for this one.
func (c *Cluster) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("user=%s dbname=postgres sslmode=disable", Superuser))
	if err != nil {
		return err
	}
	cfg.Host, cfg.Port = c.sock, uint16(c.port)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var data string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&data); err != nil {
		return err
	}
	a, errA := os.Stat(data)
	b, errB := os.Stat(c.data)
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		return fmt.Errorf("pgsql: the server on port %d serves %s, not %s", c.port, data, c.data)
	}
	return nil
}

// logSince returns the server log written since offset, at most its last
// 4000 bytes.
func (c *Cluster) logSince(offset int64) string {
	b, err := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	if err != nil {
		return err.Error()
	}
	if offset > 0 && offset <= int64(len(b)) {
		b = b[offset:]
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// binDir finds PostgreSQL's server binaries: $KOJIBOT_PG_BINDIR, else the
// newest /usr/lib/postgresql/<major>/bin (Debian), else initdb on $PATH.
func binDir() (string, error) {
	if d := os.Getenv("KOJIBOT_PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("pgsql: PostgreSQL server binaries not found (apt-get install postgresql, or set KOJIBOT_PG_BINDIR)")
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(strings.Split(filepath.Base(filepath.Dir(binDir)), ".")[0])
	return n
}
