// Package rabbitmq starts a throwaway RabbitMQ broker (Debian's
// rabbitmq-server) for tests: on loopback, AMQP over TLS only, clients
// logged in by their certificate (SASL EXTERNAL, the
// rabbitmq_auth_mechanism_ssl plugin), as Fedora's broker does. Each
// broker has its own directory, node name, Erlang distribution and epmd
// ports, so several run side by side. Startup takes a few seconds: start
// one per test package (TestMain).
package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
)

// binDir holds the broker's own scripts (not /usr/sbin's wrappers, which
// switch to the rabbitmq user).
const binDir = "/usr/lib/rabbitmq/bin"

// Broker is a running RabbitMQ.
type Broker struct {
	dir  string
	ca   *ca
	env  []string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// Client is the files of a client certificate issued by the broker's CA.
type Client struct {
	User, CertFile, KeyFile string
}

// Budget bounds what a test does with a broker, start and restart
// included: RabbitMQ's Erlang VM takes tens of seconds to start on a
// loaded two-core machine (a bound on a hang, not a timing).
const Budget = 5 * time.Minute

// Start starts a broker in dir (which it fills) and waits until it
// takes connections. The caller must Stop it.
func Start(ctx context.Context, dir string) (*Broker, error) {
	if _, err := os.Stat(filepath.Join(binDir, "rabbitmq-server")); err != nil {
		return nil, fmt.Errorf("rabbitmq: rabbitmq-server is not installed (apt-get install rabbitmq-server): %w", err)
	}
	c, err := newCA(dir, "kojibot test broker CA")
	if err != nil {
		return nil, err
	}
	srvCert, srvKey, err := c.issue("server", "localhost", true)
	if err != nil {
		return nil, err
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = harness.FreePort(); err != nil {
			return nil, err
		}
	}
	b := &Broker{dir: dir, ca: c, port: ports[0], done: make(chan struct{})}
	conf := fmt.Sprintf(`listeners.tcp = none
listeners.ssl.default = 127.0.0.1:%d
ssl_options.cacertfile = %s
ssl_options.certfile = %s
ssl_options.keyfile = %s
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
auth_mechanisms.1 = EXTERNAL
ssl_cert_login_from = common_name
loopback_users = none
log.console = false
log.file.level = info
`, ports[0], c.path(), srvCert, srvKey)
	files := map[string]string{
		"rabbitmq.conf":   conf,
		"enabled_plugins": "[rabbitmq_auth_mechanism_ssl].\n",
		"env.conf":        "",
		".erlang.cookie":  randHex(20),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			return nil, err
		}
	}
	node := "kojibot-" + randHex(4) + "@localhost"
	b.env = append(os.Environ(),
		"HOME="+dir,
		"RABBITMQ_NODENAME="+node,
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "env.conf"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "rabbitmq.pid"),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(ports[1]),
		"ERL_EPMD_PORT="+strconv.Itoa(ports[2]),
	)
	if err := b.start(ctx); err != nil {
		b.killEPMD()
		return nil, err
	}
	return b, nil
}

// start runs the server and waits until it takes AMQP connections.
func (b *Broker) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(b.dir, "server.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(binDir, "rabbitmq-server"))
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = b.env, b.dir, logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("rabbitmq: %w", err)
	}
	b.cmd, b.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(b.done) }()
	// The node registers with epmd a moment after it starts: wait for its
	// pid file, then for it to run.
	if err := b.ctl(ctx, "wait", "--timeout", "150", filepath.Join(b.dir, "rabbitmq.pid")); err != nil {
		b.kill()
		out, _ := os.ReadFile(filepath.Join(b.dir, "server.out"))
		return fmt.Errorf("rabbitmq: did not start: %w; its output: %s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			b.kill()
			return fmt.Errorf("rabbitmq: port %d never opened", b.port)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ctl runs rabbitmqctl against the broker.
func (b *Broker) ctl(ctx context.Context, args ...string) error {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, filepath.Join(binDir, "rabbitmqctl"), args...)
	cmd.Env, cmd.Dir = b.env, b.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("rabbitmqctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Addr is the broker's AMQP-over-TLS address.
func (b *Broker) Addr() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

// URL is the broker's amqps URL (default virtual host).
func (b *Broker) URL() string { return "amqps://localhost:" + strconv.Itoa(b.port) + "/" }

// CAFile is the CA that signed the broker's certificate and the clients'.
func (b *Broker) CAFile() string { return b.ca.path() }

// AddUser creates the RabbitMQ user user, with every permission on the
// default virtual host, and issues its client certificate (CN=user).
func (b *Broker) AddUser(ctx context.Context, user string) (Client, error) {
	if err := b.ctl(ctx, "add_user", user, randHex(16)); err != nil {
		return Client{}, err
	}
	if err := b.ctl(ctx, "clear_password", user); err != nil {
		return Client{}, err
	}
	if err := b.ctl(ctx, "set_permissions", "-p", "/", user, ".*", ".*", ".*"); err != nil {
		return Client{}, err
	}
	return b.Certificate(user)
}

// Certificate issues a client certificate for user, known to the broker
// or not.
func (b *Broker) Certificate(user string) (Client, error) {
	cert, key, err := b.ca.issue("client-"+user, user, false)
	return Client{User: user, CertFile: cert, KeyFile: key}, err
}

// ForeignCertificate issues a certificate for user signed by another CA,
// which the broker refuses.
func (b *Broker) ForeignCertificate(user string) (Client, error) {
	dir := filepath.Join(b.dir, "foreign")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Client{}, err
	}
	other, err := newCA(dir, "another CA")
	if err != nil {
		return Client{}, err
	}
	cert, key, err := other.issue("client-"+user, user, false)
	return Client{User: user, CertFile: cert, KeyFile: key}, err
}

// Stop stops the broker, keeping its data (Restart starts it again).
func (b *Broker) Stop() error {
	if b.cmd == nil {
		return nil
	}
	err := b.ctl(context.Background(), "shutdown")
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		b.kill()
	}
	b.cmd = nil
	return err
}

// Restart starts a stopped broker again, with its data (durable queues
// and their messages).
func (b *Broker) Restart(ctx context.Context) error { return b.start(ctx) }

// Close stops the broker and the Erlang port mapper it started.
func (b *Broker) Close() {
	b.Stop()
	b.killEPMD()
}

// killEPMD stops the broker's own Erlang port mapper (on its own port).
func (b *Broker) killEPMD() {
	cmd := exec.Command("epmd", "-kill")
	cmd.Env = b.env
	cmd.Run()
}

// kill ends the server at once.
func (b *Broker) kill() {
	if b.cmd != nil && b.cmd.Process != nil {
		b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

func randHex(n int) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		panic(errors.New("rabbitmq: no randomness"))
	}
	return hex.EncodeToString(buf)
}
