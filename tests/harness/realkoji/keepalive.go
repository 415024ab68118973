package realkoji

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// EnableKeepAlive turns Apache's KeepAlive on, as a production hub has it
// (the harness keeps it off, so that idle test clients do not hold its few
// prefork children), and restarts Apache so that it takes effect. With it
// a client that keeps its connection pays the TCP and TLS handshakes once,
// not on every call: what a benchmark of a client against the hub needs.
// Each kept connection holds a child while it is open.
func (h *Hub) EnableKeepAlive(ctx context.Context) error {
	conf := filepath.Join(h.Dir, "apache", "httpd.conf")
	data, err := os.ReadFile(conf)
	if err != nil {
		return err
	}
	off := []byte("\nKeepAlive Off\n")
	if !bytes.Contains(data, off) {
		return fmt.Errorf("realkoji: %s has no KeepAlive Off to turn on", conf)
	}
	data = bytes.Replace(data, off, []byte("\nKeepAlive On\nKeepAliveTimeout 30\nMaxKeepAliveRequests 0\n"), 1)
	if err := os.WriteFile(conf, data, 0o644); err != nil {
		return err
	}
	return h.RestartApache(ctx)
}
