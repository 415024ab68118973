package faultproxy

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echo starts a line echo server on loopback.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line and returns how long the echo took, or an error.
func roundTrip(c net.Conn, r *bufio.Reader, within time.Duration) (time.Duration, error) {
	start := time.Now()
	_ = c.SetDeadline(start.Add(within))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	if _, err := r.ReadString('\n'); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// TestModes: traffic passes; a cut holds it (nothing arrives) until Heal,
// when the held line arrives; Slow delays each chunk; Reset ends the open
// connection and a new one works.
func TestModes(t *testing.T) {
	p, err := Start("127.0.0.1:0", echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := roundTrip(c, r, 2*time.Second); err != nil {
		t.Fatalf("pass: %v", err)
	}

	p.Cut()
	if _, err := roundTrip(c, r, 300*time.Millisecond); err == nil {
		t.Fatal("a line went through a cut")
	}
	p.Heal()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatalf("the line held by the cut did not arrive after Heal: %v", err)
	}

	p.SetSlow(150 * time.Millisecond)
	if d, err := roundTrip(c, r, 3*time.Second); err != nil || d < 300*time.Millisecond {
		t.Fatalf("slow: %v %v, want at least two delays of 150ms", d, err)
	}
	p.Heal()

	if n := p.Reset(); n != 1 {
		t.Errorf("reset %d connections, want 1", n)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("the connection still reads after Reset")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := roundTrip(c2, bufio.NewReader(c2), 2*time.Second); err != nil {
		t.Fatalf("new connection after Reset: %v", err)
	}
}
