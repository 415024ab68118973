// Package matrixhs starts a real Matrix homeserver, Dendrite, for kojibot's
// end-to-end tests and `make demo`: built once from the Go module pinned in
// the test tools' own module (tests/tools/go.mod, not kojibot's go.mod),
// run with SQLite in a temporary directory on a
// free loopback port, with the server name fedora.im and registration
// closed except through a shared secret.
package matrixhs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
)

// Version is the Dendrite release pinned in tests/tools/go.mod.
const Version = "v0.13.8"

// ServerName is the homeserver's name: Fedora's, so that matrix.fas_server
// is exercised.
const ServerName = "fedora.im"

// buildMu serialises builds in this process; the cache directory is shared
// by every run on the machine.
var buildMu sync.Mutex

// BinDir is where the Dendrite binaries are cached between runs.
func BinDir() string {
	return filepath.Join(os.TempDir(), "kojibot-dendrite-"+Version)
}

// commands are the Dendrite programs the harness needs.
var commands = []string{"dendrite", "create-account", "generate-keys", "generate-config"}

// ToolsDir is the directory of the test tools' module (its go.mod pins
// Dendrite) under moduleDir, the kojibot module's root.
func ToolsDir(moduleDir string) string {
	return filepath.Join(moduleDir, "tests", "tools")
}

// Build builds the Dendrite binaries into BinDir unless they are there
// already, from the test tools' module under moduleDir (the kojibot
// module's root; see ToolsDir), and returns BinDir.
func Build(ctx context.Context, moduleDir string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	dir := BinDir()
	missing := false
	for _, c := range commands {
		if _, err := os.Stat(filepath.Join(dir, c)); err != nil {
			missing = true
		}
	}
	if !missing {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "kojibot-dendrite-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := build(ctx, moduleDir, tmp); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, c := range commands {
		// Rename is atomic: a concurrent run sees a whole binary or none.
		if err := os.Rename(filepath.Join(tmp, c), filepath.Join(dir, c)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// build runs `go build` of the Dendrite commands in the test tools'
// module, writing the binaries into out.
func build(ctx context.Context, moduleDir, out string) error {
	args := []string{"build", "-o", out + "/"}
	for _, c := range commands {
		args = append(args, "github.com/matrix-org/dendrite/cmd/"+c)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = ToolsDir(moduleDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("matrixhs: building dendrite in %s: %w\n%s", cmd.Dir, err, out)
	}
	return nil
}

// Server is one running Dendrite.
type Server struct {
	// URL is the client-server API base, http://127.0.0.1:PORT.
	URL string
	// SharedSecret is the registration shared secret.
	SharedSecret string

	bin, dir, config string
	port             int
	guests           bool
	mu               sync.Mutex
	cmd              *exec.Cmd
	exited           chan struct{}
	log              *lockedWriter
}

// Options are what StartWith may change from Start's homeserver.
type Options struct {
	// Guests lets anyone register a guest account (POST
	// /register?kind=guest). Dendrite allows guests only while
	// registration is open, so this also opens registration without
	// verification (on the loopback address only).
	Guests bool
}

// Start writes a configuration under dir and starts Dendrite from binDir.
func Start(ctx context.Context, binDir, dir string) (*Server, error) {
	return StartWith(ctx, binDir, dir, Options{})
}

// StartWith is Start with opts.
func StartWith(ctx context.Context, binDir, dir string, opts Options) (*Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	s := &Server{bin: binDir, dir: dir, port: port, URL: fmt.Sprintf("http://127.0.0.1:%d", port),
		SharedSecret: hex.EncodeToString(secret), config: filepath.Join(dir, "dendrite.yaml"), guests: opts.Guests}
	gen := exec.CommandContext(ctx, filepath.Join(binDir, "generate-config"), "-ci", "-server", ServerName, "-dir", dir)
	yaml, err := gen.Output()
	if err != nil {
		return nil, fmt.Errorf("matrixhs: generate-config: %w", err)
	}
	conf := string(yaml)
	registration := "registration_disabled: true"
	if opts.Guests {
		registration = "registration_disabled: false"
	}
	for _, r := range [][2]string{
		{"registration_disabled: false", registration},
		{"guests_disabled: false", fmt.Sprintf("guests_disabled: %t", !opts.Guests)},
		{"registration_shared_secret: complement", "registration_shared_secret: " + s.SharedSecret},
		{"in_memory: true\n    disable_tls_validation", "in_memory: false\n    disable_tls_validation"},
		{"private_key: matrix_key.pem", "private_key: " + filepath.Join(dir, "matrix_key.pem")},
	} {
		if !strings.Contains(conf, r[0]) {
			return nil, fmt.Errorf("matrixhs: generated config lacks %q", r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	if err := os.WriteFile(s.config, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	keys := exec.CommandContext(ctx, filepath.Join(binDir, "generate-keys"), "--private-key", filepath.Join(dir, "matrix_key.pem"))
	keys.Dir = dir
	if out, err := keys.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("matrixhs: generate-keys: %w\n%s", err, out)
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// start runs the dendrite process and waits until it answers.
func (s *Server) start(ctx context.Context) error {
	args := []string{"--config", s.config, "--http-bind-address", fmt.Sprintf("127.0.0.1:%d", s.port)}
	if s.guests {
		args = append(args, "--really-enable-open-registration")
	}
	cmd := exec.Command(filepath.Join(s.bin, "dendrite"), args...)
	cmd.Dir = s.dir
	log := &lockedWriter{w: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := harness.Spawn(cmd); err != nil {
		return fmt.Errorf("matrixhs: starting dendrite: %w", err)
	}
	s.mu.Lock()
	s.cmd, s.log = cmd, log
	s.mu.Unlock()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if !harness.WaitFor(ctx, 2*time.Minute, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		return harness.Listening(fmt.Sprintf("127.0.0.1:%d", s.port))
	}) {
		return fmt.Errorf("matrixhs: dendrite did not listen on %d", s.port)
	}
	select {
	case <-exited:
		return fmt.Errorf("matrixhs: dendrite exited: %s", s.Output())
	default:
	}
	s.mu.Lock()
	s.exited = exited
	s.mu.Unlock()
	return nil
}

// Output is what Dendrite printed (its last start).
func (s *Server) Output() string {
	s.mu.Lock()
	l := s.log
	s.mu.Unlock()
	if l == nil {
		return ""
	}
	return l.String()
}

// CreateUser registers localpart with password through the shared secret
// and returns its Matrix id.
func (s *Server) CreateUser(ctx context.Context, localpart, password string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "create-account"), "-config", s.config,
		"-url", s.URL, "-username", localpart, "-passwordstdin")
	cmd.Stdin = strings.NewReader(password)
	cmd.Dir = s.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("matrixhs: create-account %s: %w\n%s", localpart, err, out)
	}
	return "@" + localpart + ":" + ServerName, nil
}

// Stop stops Dendrite (SIGTERM, then SIGKILL).
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Restart stops Dendrite and starts it again on the same port and data.
func (s *Server) Restart(ctx context.Context) error {
	s.Stop()
	return s.start(ctx)
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
