package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/fasjsonfake"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// TestAccountNamedAfterFASUserIsNotThatUser: anyone can register the
// services account "dave"; with FASJSON that account is not FAS user dave
// when dave's profile names another IRC nick (dave_irc). Only the account
// the profile names gets dave's rights.
func TestAccountNamedAfterFASUserIsNotThatUser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb.FASJSON.SetUser("dave", fasjsonfake.User{Groups: []string{sandbox.Group}, IRCNicks: []string{"irc:/dave_irc"}})
	for _, acct := range []string{"dave", "dave_irc"} {
		if err := sb.IRC.RegisterAccount(ctx, acct, acct+"-pw"); err != nil {
			t.Fatalf("register %s: %v", acct, err)
		}
	}
	before := snapshot(t, "koji")
	squatter := joinWithPassword(t, fasBot, "dave", "dave-pw", "")
	got := askPastFASJSONFailure(squatter, "capacity ppc2 3")
	if !strings.HasPrefix(got, "denied:") || !strings.Contains(got, `"dave" is not linked to a FAS user`) {
		t.Errorf("services account dave: reply %q, want denied: not linked", got)
	}
	if after := snapshot(t, "koji"); after != before {
		t.Errorf("the squatter changed the database:\n%s\n%s", before, after)
	}
	owner := joinWithPassword(t, fasBot, "dave_irc", "dave_irc-pw", "")
	got = askPastFASJSONFailure(owner, "capacity ppc2 3")
	if !strings.Contains(got, "ppc2.fedora.redhat.com capacity 2 → 3") {
		t.Fatalf("services account dave_irc (in dave's ircnicks): reply %q, want the change", got)
	}
	owner.expect("capacity ppc2 2", "ppc2.fedora.redhat.com capacity 3 → 2")
}

// askPastFASJSONFailure asks, again while the bot still remembers a FASJSON
// failure of another test (for acl.FailureMemory).
func askPastFASJSONFailure(u *user, text string) string {
	u.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := u.ask(text)
		if !strings.Contains(got, "FASJSON unavailable") || time.Now().After(deadline) {
			return got
		}
		time.Sleep(2 * time.Second)
	}
}
