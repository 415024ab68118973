package commands

import (
	"context"
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/commands/state"
)

// A job started in a private message is listed, by jobs and by jobs --all,
// only to its owner and only in private: in a channel neither its command
// nor its owner shows.
func TestPrivateJobsStayPrivate(t *testing.T) {
	for _, withStore := range []bool{false, true} {
		name := "memory"
		if withStore {
			name = "store"
		}
		t.Run(name, func(t *testing.T) {
			deps := Deps{Config: journalConfig(), DB: &fakeDB{}, ACL: fakeACL{members: map[string]bool{"alice": true, "carol": true}}}
			if withStore {
				st, err := state.Open(context.Background(), t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				deps.State = st
			}
			d := New(deps)
			release := make(chan struct{})
			t.Cleanup(func() { close(release); d.Close() })
			hold := func(ctx context.Context, c *Call) error {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return nil
			}
			secret := jobCall(d, "cleanup", &recorder{})
			secret.Req.Place, secret.Req.Account, secret.FASUser = "", "carol", "carol"
			secret.Parsed.Args["builder"] = []string{"b1"}
			if err := secret.StartJob([]string{"b1"}, hold); err != nil {
				t.Fatal(err)
			}
			public := jobCall(d, "restart", &recorder{})
			if err := public.StartJob([]string{"b2"}, hold); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				who, place, text string
				private          bool
			}{
				{"alice", "#ops", "jobs", false},
				{"carol", "#ops", "jobs", false},
				{"alice", "", "jobs", false},
				{"carol", "", "jobs", true},
				{"alice", "#ops", "jobs --all", false},
				{"carol", "#ops", "jobs --all", false},
				{"alice", "", "jobs --all", false},
				{"carol", "", "jobs --all", true},
			} {
				got := say(d, tc.who, tc.place, tc.text)
				if !strings.Contains(got, "restart") {
					t.Errorf("%s in %q, %s: the channel's job is not listed:\n%s", tc.who, tc.place, tc.text, got)
				}
				shown := strings.Contains(got, "cleanup") || strings.Contains(got, "carol") || strings.Contains(got, "private message")
				if shown != tc.private {
					t.Errorf("%s in %q, %s: private job shown %v, want %v:\n%s", tc.who, tc.place, tc.text, shown, tc.private, got)
				}
			}
		})
	}
}
