// Package subsystem sets the SFTP subsystem of running builders (of the
// tests' builders harness) for kojibot's statvfs tests and benchmarks: it
// rewrites a builder's sshd_config with the Subsystem line wanted (or none)
// and restarts its sshd in place (SIGHUP), keeping open connections.
package subsystem

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/builders"
)

// SFTPServer is the Subsystem line that runs OpenSSH's sftp-server, one
// process per SFTP session.
const SFTPServer = "Subsystem sftp /usr/lib/openssh/sftp-server"

// Internal is the Subsystem line that serves SFTP inside sshd's own
// session process (internal-sftp).
const Internal = "Subsystem sftp internal-sftp"

// Set gives the builder name of farm, started by builders.Start in dir,
// the Subsystem line line (none when empty) and restarts its sshd, waiting
// until it listens again.
func Set(ctx context.Context, farm *builders.Farm, dir, name, line string) error {
	cfgPath := filepath.Join(dir, "hosts", name, "sshd_config")
	logPath := filepath.Join(dir, "hosts", name, "sshd.log")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return fmt.Errorf("subsystem: %w", err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(l)), "subsystem") {
			out = append(out, l)
		}
	}
	if line != "" {
		out = append(out, line)
	}
	if err := os.WriteFile(cfgPath, []byte(strings.Join(out, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("subsystem: %w", err)
	}
	before := listening(logPath)
	// sshd is PID 1 of the builder's PID namespace; SIGHUP makes it exec
	// itself again with the new configuration.
	if _, err := farm.Exec(name, "kill -HUP 1"); err != nil {
		return fmt.Errorf("subsystem: %w", err)
	}
	addr := farm.Address(name)
	if !harness.WaitFor(ctx, 30*time.Second, func() bool { return listening(logPath) > before && harness.Listening(addr) }) {
		return fmt.Errorf("subsystem: %s: sshd did not listen again after SIGHUP", name)
	}
	return nil
}

// listening counts sshd's "Server listening" log lines.
func listening(logPath string) int {
	b, _ := os.ReadFile(logPath)
	return strings.Count(string(b), "Server listening on")
}
