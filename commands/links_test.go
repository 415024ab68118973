package commands

import (
	"errors"
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/config"
)

// TestDraftLinks: the links to drafts posted in a channel name the draft's
// random token, never its short id.
func TestDraftLinks(t *testing.T) {
	cfg := config.Default()
	cfg.HTTP.PublicURL = "https://kojibot.example.org/"
	store := outage.NewStore(0, nil)
	d := New(Deps{Config: cfg, DB: &fakeDB{}, ACL: fakeACL{members: map[string]bool{"alice": true}}, Drafts: store})
	got := run(d, "alice", "outage draft koji disk full")
	drafts, _ := store.List()
	if len(drafts) != 1 || len(drafts[0].Token) < 26 {
		t.Fatalf("drafts %+v after %q", drafts, got)
	}
	dr := drafts[0]
	want := "https://kojibot.example.org/drafts/" + dr.Token
	if !strings.Contains(got, want) || strings.Contains(got, "/drafts/"+dr.ID) {
		t.Errorf("outage draft reply %q, want the link %s", got, want)
	}
	if got := run(d, "alice", "outage show"); !strings.Contains(got, want) || strings.Contains(got, "/drafts/"+dr.ID) {
		t.Errorf("outage show %q, want the link %s", got, want)
	}
	_, link, err := d.DraftForFullMount(fleet.Usage{Path: "/mnt/koji", Percent: 95}, "koji-hub")
	if err != nil {
		t.Fatal(err)
	}
	list, _ := store.List()
	latest := list[0]
	if link != "https://kojibot.example.org/drafts/"+latest.Token || latest.Token == dr.Token {
		t.Errorf("DraftForFullMount link %q, want the new draft's token", link)
	}
}

// TestJobLink: a job's link names its token, and a job started in a
// private message has none.
func TestJobLink(t *testing.T) {
	cfg := config.Default()
	cfg.HTTP.PublicURL = "https://kojibot.example.org/"
	d := New(Deps{Config: cfg, DB: &fakeDB{}, ACL: fakeACL{}})
	const token = "q3hx7k2mzt5ydw4nqa6vcr2lpe"
	if got := d.JobLink(&Job{ID: "7", Token: token, Place: "#fedora-admin"}); got != "https://kojibot.example.org/jobs/"+token {
		t.Errorf("JobLink = %q", got)
	}
	if got := d.JobLink(&Job{ID: "8", Token: token, Place: ""}); got != "" {
		t.Errorf("JobLink of a private job = %q, want none", got)
	}
	cfg2 := config.Default()
	cfg2.HTTP.PublicURL = ""
	if got := New(Deps{Config: cfg2, DB: &fakeDB{}, ACL: fakeACL{}}).JobLink(&Job{ID: "7", Token: token, Place: "#x"}); got != "" {
		t.Errorf("JobLink without public_url = %q", got)
	}
}

// awayDrafts is a drafts store that cannot be read.
type awayDrafts struct{ outage.Drafts }

func (awayDrafts) Get(string) (outage.Draft, bool, error) {
	return outage.Draft{}, false, errors.New("dial tcp 10.0.0.5:5432: connection refused")
}
func (awayDrafts) List() ([]outage.Draft, error) {
	return nil, errors.New("dial tcp 10.0.0.5:5432: connection refused")
}

// TestOutageShowStoreAway: drafts that cannot be read are an error, never
// "no outage drafts" or "no outage draft o3".
func TestOutageShowStoreAway(t *testing.T) {
	d := New(Deps{Config: config.Default(), DB: &fakeDB{}, ACL: fakeACL{members: map[string]bool{"alice": true}}, Drafts: awayDrafts{}})
	for _, cmd := range []string{"outage show", "outage show o3"} {
		got := run(d, "alice", cmd)
		if !strings.Contains(got, "error: the outage drafts cannot be read from the state store now") || strings.Contains(got, "no outage draft") {
			t.Errorf("%s with the store away = %q", cmd, got)
		}
	}
}
