package builders

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestBotKeyIsRootsToGrant: the bot's key is read from a root-owned
// authorized_keys with restrict and from=: a key the bot's user adds to its
// own ~/.ssh is never accepted (a stolen key cannot plant one that survives
// rotation), and the key forwards nothing except on a jump host.
func TestBotKeyIsRootsToGrant(t *testing.T) {
	f := startFarm(t, []Spec{{Name: "b1"}, {Name: "jump", Bastion: true}})
	if out, err := f.Exec("b1", "stat -c '%U %a' /etc/ssh/authorized_keys/"+User); err != nil || strings.TrimSpace(out) != "root 644" {
		t.Fatalf("the bot's authorized_keys: %q %v, want root's, 0644", out, err)
	}
	// A key of the bot user's own, planted in its ~/.ssh.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	planted, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(planted.PublicKey())))
	if out, err := f.Exec("b1", "runuser -u "+User+" -- sh -c 'echo \""+line+"\" >> ~/.ssh/authorized_keys'"); err != nil {
		t.Fatalf("planting a key: %v: %s", err, out)
	}
	nc, err := net.DialTimeout("tcp", f.Address("b1"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if c, _, _, err := ssh.NewClientConn(nc, f.Address("b1"), &ssh.ClientConfig{User: User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(planted)}, HostKeyCallback: ssh.FixedHostKey(f.HostKey("b1"))}); err == nil {
		c.Close()
		t.Error("a key planted in the bot user's ~/.ssh logged in")
	}
	nc.Close()
	// The farm's key: logs in, forwards only through the jump host.
	for _, tc := range []struct {
		host    string
		forward bool
	}{{"b1", false}, {"jump", true}} {
		c, err := dial(t, f, tc.host)
		if err != nil {
			t.Fatalf("%s: %v", tc.host, err)
		}
		fc, err := c.Dial("tcp", f.Address("b1"))
		if (err == nil) != tc.forward {
			t.Errorf("%s: forwarding to b1: %v; want allowed %v", tc.host, err, tc.forward)
		}
		if fc != nil {
			fc.Close()
		}
		c.Close()
	}
}
