package messaging

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestExplain: each way a connection fails is said in the operator's
// words, judged by the error's kind, never by digits that happen to be in
// an address (a reset from port 54036 is not an AMQP 403).
func TestExplain(t *testing.T) {
	reset := &net.OpError{Op: "write", Net: "tcp",
		Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 54036},
		Addr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 44030},
		Err:    &os.SyscallError{Syscall: "write", Err: syscall.ECONNRESET}}
	for _, tt := range []struct {
		name string
		err  error
		says string
	}{
		{"reset at login", reset, "refused the bot's client certificate (messaging.cert_file) at login"},
		{"access refused", &amqp.Error{Code: amqp.AccessRefused, Reason: "ACCESS_REFUSED - Login was refused"}, "refused the login by certificate"},
		{"no EXTERNAL", amqp.ErrSASL, "refused the login by certificate"},
		{"no broker", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}, "messaging: connecting to the broker: dial tcp: connect: connection refused"},
		{"something else", errors.New("frame too large 403"), "messaging: connecting to the broker: frame too large 403"},
	} {
		if got := explain(tt.err).Error(); !strings.Contains(got, tt.says) {
			t.Errorf("%s: explain = %q, want it to say %q", tt.name, got, tt.says)
		}
	}
}
