package commands

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/config"
)

var reConfirmToken = regexp.MustCompile(`confirm ([a-z0-9]{8})`)

// confirmDispatcher is a dispatcher on the real clock: run it in a synctest
// bubble to move that clock.
func confirmDispatcher(t *testing.T) (*Dispatcher, *fakeDB) {
	t.Helper()
	db := &fakeDB{hosts: testHosts(time.Now()), backends: []kojidb.Backend{
		{PID: 11, User: "koji", State: "idle"}, {PID: 12, User: "koji", State: "idle"}, {PID: 13, User: "postgres", State: "active"}}}
	d := New(Deps{DB: db, ACL: fakeACL{members: map[string]bool{"alice": true, "carol": true}}})
	return d, db
}

func say(d *Dispatcher, account, place, text string) string {
	r := &recorder{}
	d.Handle(context.Background(), Request{Account: account, Nick: account, Place: place, Text: text}, r)
	return r.all()
}

// sayMessages is say, returning the structured replies.
func sayMessages(d *Dispatcher, account, place, text string) []reply.Message {
	r := &recorder{}
	d.Handle(context.Background(), Request{Account: account, Nick: account, Place: place, Text: text}, r)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.messages
}

// tableOf is the table of the only reply in ms, or fails t.
func tableOf(t *testing.T, ms []reply.Message) *reply.Table {
	t.Helper()
	if len(ms) != 1 || ms[0].Table == nil {
		t.Fatalf("want one reply with a table, got %+v", ms)
	}
	return ms[0].Table
}

func TestConfirmFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, db := confirmDispatcher(t)
		got := say(d, "alice", "#fedora-admin", "connections kill --older 40m")
		m := reConfirmToken.FindStringSubmatch(got)
		if !strings.HasPrefix(got, "confirm: terminate the 2 backends of role koji") || m == nil {
			t.Fatalf("reply %q, want a confirm: with the plan and a token", got)
		}
		if db.sets != 0 {
			t.Fatal("something ran before the confirmation")
		}
		token := m[1]
		if got := say(d, "carol", "#fedora-admin", "confirm "+token); !strings.HasPrefix(got, "denied:") || !strings.Contains(got, "another account") {
			t.Errorf("another account's confirm: %q", got)
		}
		if got := say(d, "alice", "#elsewhere", "confirm "+token); !strings.HasPrefix(got, "denied:") {
			t.Errorf("confirm from another place: %q", got)
		}
		if got := say(d, "alice", "#fedora-admin", "confirm "+token); !strings.Contains(got, "2 found, 2 terminated, 0 left") {
			t.Errorf("confirm: %q", got)
		}
		if got := say(d, "alice", "#fedora-admin", "confirm "+token); !strings.HasPrefix(got, "error:") {
			t.Errorf("a used token must not work twice: %q", got)
		}
		if db.sets != 1 || len(db.backends) != 1 || db.backends[0].User != "postgres" {
			t.Errorf("backends left %v after %d terminations", db.backends, db.sets)
		}

		// Expiry.
		db.backends = append(db.backends, kojidb.Backend{PID: 14, User: "koji"})
		m = reConfirmToken.FindStringSubmatch(say(d, "alice", "#fedora-admin", "connections kill --older 40m"))
		time.Sleep(6 * time.Minute)
		if got := say(d, "alice", "#fedora-admin", "confirm "+m[1]); !strings.HasPrefix(got, "error:") || !strings.Contains(got, "expired") {
			t.Errorf("expired token: %q", got)
		}
		// A caller who may not run the command cannot confirm it either.
		if got := say(d, "bob", "#fedora-admin", "connections kill --older 40m"); !strings.HasPrefix(got, "denied:") {
			t.Errorf("bob: %q", got)
		}
	})
}

func TestJobsLockAndCancel(t *testing.T) {
	cfg := config.Default()
	cfg.Hosts = map[string]config.Host{"xenbuilder2": {Address: "127.0.0.2:22", Services: []string{"kojid"}}}
	fl := &fakeFleet{hold: make(chan struct{})}
	d := New(Deps{Config: cfg, DB: &fakeDB{}, Fleet: fl, ACL: fakeACL{members: map[string]bool{"alice": true, "carol": true}}})
	defer d.Close()
	out := &recorder{}
	req := Request{Account: "alice", Nick: "alice", Place: "#fedora-admin", Text: "restart builders xenbuilder2"}
	d.Handle(context.Background(), req, out)
	m := reConfirmToken.FindStringSubmatch(out.all())
	if m == nil {
		t.Fatalf("no confirmation: %q", out.all())
	}
	req.Text = "confirm " + m[1]
	d.Handle(context.Background(), req, out)
	if !strings.Contains(out.all(), "job 1 started") {
		t.Fatalf("no job: %q", out.all())
	}
	// A second mutating job on the same host is refused with the job's id and owner.
	if got := say(d, "carol", "#fedora-admin", "restart builders xenbuilder2"); !strings.Contains(got, "confirm:") {
		t.Fatalf("carol: %q", got)
	} else {
		got = say(d, "carol", "#fedora-admin", "confirm "+reConfirmToken.FindStringSubmatch(got)[1])
		if !strings.Contains(got, "busy with job 1") || !strings.Contains(got, "by alice") {
			t.Errorf("second job on a busy host: %q", got)
		}
	}
	if rows := tableOf(t, sayMessages(d, "alice", "#fedora-admin", "jobs")).Rows; len(rows) != 1 ||
		!slices.Equal(rows[0][:4], []string{"1", "restart builders xenbuilder2", "alice", "#fedora-admin"}) {
		t.Errorf("jobs: %q", rows)
	}
	if got := say(d, "bob", "#fedora-admin", "cancel 1"); !strings.HasPrefix(got, "denied:") {
		t.Errorf("bob may not cancel: %q", got)
	}
	if got := say(d, "alice", "#fedora-admin", "cancel 1"); !strings.Contains(got, "cancelling job 1") {
		t.Errorf("cancel: %q", got)
	}
	j, _ := d.Job("1")
	select {
	case <-j.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the job did not end after cancel")
	}
	if r := j.Result(); r != "cancelled" {
		t.Errorf("result %q, want cancelled", r)
	}
	if !strings.Contains(out.all(), "job 1 cancelled") {
		t.Errorf("no cancellation reply: %q", out.all())
	}
}
