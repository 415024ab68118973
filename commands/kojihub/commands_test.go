package kojihub_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/kojihub"
	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

// allow lets every caller run everything, as the FAS user of its account.
type allow struct{}

func (allow) Authorize(_ context.Context, c acl.Caller, _ string, _ bool) acl.Decision {
	return acl.Decision{Allowed: true, FASUser: c.Account, Rule: "test"}
}

// replies is an Output that keeps every reply.
type replies struct {
	mu   sync.Mutex
	msgs []string
}

func (r *replies) Send(m reply.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m.String())
}

func (r *replies) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

// dispatcher is a commands.Dispatcher on deps, with every caller allowed.
func dispatcher(t *testing.T, deps commands.Deps) *commands.Dispatcher {
	t.Helper()
	if deps.Config == nil {
		deps.Config = config.Default()
	}
	deps.ACL = allow{}
	deps.Log = kojihub.TestLogger(t)
	d := commands.New(deps)
	t.Cleanup(d.Close)
	return d
}

// say runs text as alice and returns the replies.
func say(d *commands.Dispatcher, text string) string {
	r := &replies{}
	d.Handle(context.Background(), commands.Request{Account: "alice", Nick: "alice", Place: "#fedora-admin", Text: text}, r)
	d.Wait()
	return r.text()
}

// TestCommandsThroughTheHub runs hosts, host, capacity, disable and enable
// with a hub-only configuration (no database: Deps.DB is nil) on one of two
// twin hosts, and the same commands through the database path (kojidb on
// the hub's own database) on the other: the replies are the same but for
// the host's name. `connections` says it needs koji.db.
func TestCommandsThroughTheHub(t *testing.T) {
	const (
		viaHub = "ppc3.fedora.redhat.com"
		viaDB  = "ppc4.fedora.redhat.com"
	)
	twin := func(name string) realkoji.SeedHost {
		return realkoji.SeedHost{Name: name, Arches: "ppc ppc64", Capacity: 4, Description: "POWER7, rack 12"}
	}
	hub := kojihub.SeededHub(t, realkoji.Seed{Hosts: []realkoji.SeedHost{twin(viaHub), twin(viaDB)}}, "host")
	ctx := context.Background()
	farm := kojihub.NewFarm(kojihub.CertClient(t, hub, nil), kojihub.FarmOptions{})
	db, err := kojidb.Open(ctx, hub.BotDSN(), kojihub.BotUser, kojihub.TestLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	hubBot := dispatcher(t, commands.Deps{Hub: farm})
	dbBot := dispatcher(t, commands.Deps{DB: db})
	for _, step := range []struct{ cmd, want string }{
		{"host %s", "%s: enabled, not ready, load 0 of capacity 4, arches ppc ppc64, last check-in never"},
		{"capacity %s 2", "%s capacity 4 → 2 (load 0)"},
		{"capacity %s 2", "%s capacity is already 2; nothing changed (load 0)"},
		{"disable %s OOM, see ticket 42", "%s disabled (load 0/2); comment: OOM, see ticket 42 (alice via kojibot)"},
		{"disable %s", "%s is already disabled; nothing changed"},
		{"disable %s fan replaced", "%s is already disabled; comment: fan replaced (alice via kojibot)"},
		{"enable %s", "%s enabled (load 0/2)"},
		{"enable %s", "%s is already enabled; nothing changed"},
		{"host %s", "%s: enabled, not ready, load 0 of capacity 2, arches ppc ppc64, last check-in never; comment: fan replaced (alice via kojibot)"},
	} {
		short := func(host string) string { return strings.SplitN(host, ".", 2)[0] }
		got := say(hubBot, strings.ReplaceAll(step.cmd, "%s", short(viaHub)))
		want := strings.ReplaceAll(step.want, "%s", viaHub)
		if got != want {
			t.Errorf("%s through the hub: %q, want %q", step.cmd, got, want)
		}
		viaDBReply := say(dbBot, strings.ReplaceAll(step.cmd, "%s", short(viaDB)))
		if strings.ReplaceAll(viaDBReply, viaDB, viaHub) != got {
			t.Errorf("%s: the hub's reply %q, the database's %q", step.cmd, got, viaDBReply)
		}
	}
	hostsHub, hostsDB := say(hubBot, "hosts"), say(dbBot, "hosts")
	if !strings.Contains(hostsHub, "2 hosts, 2 enabled, 0 ready") || hostsHub != hostsDB {
		t.Errorf("hosts through the hub:\n%s\nthrough the database:\n%s", hostsHub, hostsDB)
	}
	if got, want := say(hubBot, "connections"), "error: connections needs koji.db"; !strings.HasPrefix(got, want) {
		t.Errorf("connections without koji.db: %q, want %q...", got, want)
	}
}

// TestCommandsRefusedByTheHub: a bot user without the host permission is
// refused by the hub, and the caller reads why in the documented words;
// nothing changed.
func TestCommandsRefusedByTheHub(t *testing.T) {
	const host = "ppc3.fedora.redhat.com"
	hub := kojihub.SeededHub(t, realkoji.Seed{Hosts: []realkoji.SeedHost{{Name: host, Arches: "ppc64", Capacity: 4}}})
	farm := kojihub.NewFarm(kojihub.CertClient(t, hub, nil), kojihub.FarmOptions{})
	bot := dispatcher(t, commands.Deps{Hub: farm})
	before := say(bot, "host ppc3")
	for _, cmd := range []string{"capacity ppc3 2", "disable ppc3 broken fan", "enable ppc3"} {
		got := say(bot, cmd)
		if !strings.HasPrefix(got, "error: kojibot's Koji user lacks the host permission") || !strings.HasSuffix(got, "; nothing was changed") {
			t.Errorf("%s: %q", cmd, got)
		}
	}
	if after := say(bot, "host ppc3"); after != before {
		t.Errorf("refused commands changed the host: %q, was %q", after, before)
	}
}

// TestHubNotAnswering: a hub that does not answer gives the documented
// error, without its address.
func TestHubNotAnswering(t *testing.T) {
	c, err := kojihub.New(kojihub.Options{URL: "https://127.0.0.1:1/kojihub", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	bot := dispatcher(t, commands.Deps{Hub: kojihub.NewFarm(c, kojihub.FarmOptions{})})
	for _, cmd := range []string{"hosts", "host ppc3", "capacity ppc3 2"} {
		if got := say(bot, cmd); got != "error: the Koji hub is not answering" {
			t.Errorf("%s: %q", cmd, got)
		}
	}
}
