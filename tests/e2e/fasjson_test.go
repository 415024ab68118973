package e2e

import (
	"testing"
)

// TestFASJSON runs the ACL against the FASJSON stand-in: a member may, a
// non-member may not, and when FASJSON fails or cannot be reached a
// mutating command is refused with the reason.
func TestFASJSON(t *testing.T) {
	bob := join(t, fasBot, "bob", "")
	bob.expect("capacity ppc2 3", "denied:", "sysadmin-build")

	alice := join(t, fasBot, "alice", "")
	alice.expect("capacity ppc2 3", "ppc2.fedora.redhat.com capacity 2 → 3")
	alice.expect("capacity ppc2 2", "ppc2.fedora.redhat.com capacity 3 → 2")

	before := snapshot(t, "koji")
	sb.FASJSON.SetFailure(500)
	defer sb.FASJSON.SetFailure(0)
	// carol is a member, but her membership is not cached: FASJSON must answer.
	carol := join(t, fasBot, "carol", "")
	carol.expect("capacity ppc2 3", "denied:", "FASJSON unavailable")
	sb.FASJSON.SetFailure(0)

	nofas := join(t, noFASBot, "alice", "")
	nofas.expect("capacity ppc2 3", "denied:", "FASJSON unavailable")
	// Read-only commands need only a services login.
	nofas.expect("host ppc2", "ppc2.fedora.redhat.com: enabled")

	if after := snapshot(t, "koji"); after != before {
		t.Errorf("a command refused for want of FASJSON changed the database:\n%s\n%s", before, after)
	}
}
