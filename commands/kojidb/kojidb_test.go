package kojidb

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestEveryCallHasADeadline: a database that accepts connections and never
// answers (a hung server) fails a call once callTimeout passes, even for a
// caller without a deadline of its own, instead of holding it for the
// connect timeout or forever.
func TestEveryCallHasADeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(held)
				return
			}
			held <- c // never answered, never closed until the end
		}
	}()
	defer func() {
		ln.Close()
		for c := range held {
			c.Close()
		}
	}()
	old := callTimeout
	callTimeout = 300 * time.Millisecond
	defer func() { callTimeout = old }()

	db, err := Open(context.Background(), "postgres://kojibot@"+ln.Addr().String()+"/koji?sslmode=disable&connect_timeout=60", "kojibot", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = db.Hosts(context.Background())
	took := time.Since(start)
	if err == nil {
		t.Fatal("Hosts on a hung database succeeded")
	}
	// Two attempts of callTimeout each, with room for a busy machine; the
	// connect timeout (60 s) is what a call without a deadline would wait.
	if took > 20*time.Second {
		t.Errorf("Hosts on a hung database returned after %s, want about %s", took, 2*callTimeout)
	}
}
