package commands

import (
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
	drafts := store.List()
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
	latest := store.List()[0]
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
