package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/tests/harness/ircnet"
)

// webToken is the form of the random token in a draft's or job's link.
var webToken = regexp.MustCompile(`^[a-zA-Z0-9_-]{22,}$`)

// privateLines collects the bot's private PRIVMSGs to u until done accepts
// one, and returns them all.
func privateLines(u *user, what string, done func(string) bool) []string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bldWait)
	defer cancel()
	var got []string
	for {
		m, err := u.c.Expect(ctx, func(m ircnet.Message) bool {
			return m.Command == "PRIVMSG" && m.Source == u.bot && m.Target() == u.nick
		})
		if err != nil {
			u.t.Fatalf("waiting for %s; got %q: %v\nbot output:\n%s", what, got, err, tail(bots[u.bot].Output(), 40))
		}
		got = append(got, m.Text)
		if done(m.Text) {
			return got
		}
	}
}

// TestHTTPTokens: the pages the bot links to are served under random
// tokens only. A draft's link names its token and is served; its short id
// is not. A job's short id is not served either, and a job started in a
// private message is never linked nor served.
func TestHTTPTokens(t *testing.T) {
	alice, base := watchBot(t, "kojibot-web", nil)

	// A draft made in the channel.
	got := alice.expect("outage draft koji the hub's disk is full", "outage draft o")
	m := regexp.MustCompile(`^outage draft (o[0-9]+): .*; draft: (\S+)$`).FindStringSubmatch(got)
	if m == nil || !strings.HasPrefix(m[2], base+"/drafts/") {
		t.Fatalf("outage draft: %q, want its link under %s/drafts/", got, base)
	}
	id, link := m[1], m[2]
	token := strings.TrimPrefix(link, base+"/drafts/")
	if !webToken.MatchString(token) || token == id {
		t.Fatalf("draft link %s does not name a random token", link)
	}
	if code, body := httpGet(t, link); code != 200 || !strings.Contains(body, "Unplanned Outage - koji") ||
		!strings.Contains(body, "the hub's disk is full") {
		t.Errorf("draft page %s: %d\n%s", link, code, body)
	}
	for _, guess := range []string{id, strings.ToUpper(id), "o1", token[:len(token)-1], strings.ToUpper(token)} {
		if code, body := httpGet(t, base+"/drafts/"+guess); code != 404 {
			t.Errorf("/drafts/%s: %d %q, want 404", guess, code, body)
		}
	}
	// outage show lists it with the same link.
	if shown := strings.Join(alice.askN("outage show", 3), "\n"); !regexp.MustCompile(`(?m)^` + id + `  +alice  +.*  ` + regexp.QuoteMeta(link) + `$`).MatchString(shown) {
		t.Errorf("outage show %q lacks %s", shown, link)
	}

	// A job started in the channel: its short id serves nothing; a link
	// posted for it names its token and serves its log.
	bldSend(alice, "override f8 foo-1.0-2")
	jobID, lines := bldStarted(alice, "override f8 foo-1.0-2")
	lines = append(lines, bldJobEnd(alice, jobID)...)
	if code, body := httpGet(t, base+"/jobs/"+jobID); code != 404 {
		t.Errorf("/jobs/%s (the short id): %d %q, want 404", jobID, code, body)
	}
	for _, l := range lines {
		i := strings.Index(l, base+"/jobs/")
		if i < 0 {
			continue
		}
		jobLink := strings.Fields(l[i:])[0]
		jobToken := strings.TrimPrefix(jobLink, base+"/jobs/")
		if !webToken.MatchString(jobToken) || jobToken == jobID {
			t.Errorf("job link %s does not name a random token", jobLink)
		}
		if code, body := httpGet(t, jobLink); code != 200 || !strings.Contains(body, "override f8 foo-1.0-2") {
			t.Errorf("job page %s: %d\n%s", jobLink, code, body)
		}
	}

	// A job started in a private message: no link, and nothing served.
	if err := alice.c.Privmsg(alice.bot, "override f8 bar-1.0-1"); err != nil {
		t.Fatal(err)
	}
	jobLine := regexp.MustCompile(`^job ([0-9]+) (started: |\(override f8 bar-1\.0-1\) done in )`)
	var privID string
	private := privateLines(alice, "the private job's end", func(l string) bool {
		if strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "denied:") {
			t.Fatalf("private override: %s", l)
		}
		mm := jobLine.FindStringSubmatch(l)
		if mm == nil {
			return false
		}
		privID = mm[1]
		return strings.HasPrefix(mm[2], "(")
	})
	for _, l := range private {
		if strings.Contains(l, "/jobs/") {
			t.Errorf("a private job's reply links its page: %q", l)
		}
	}
	if code, body := httpGet(t, base+"/jobs/"+privID); code != 404 {
		t.Errorf("/jobs/%s (a private job): %d %q, want 404", privID, code, body)
	}
}
