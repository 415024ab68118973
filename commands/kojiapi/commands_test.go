package kojiapi_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/commands/kojiapi"
	"github.com/fedora-infra/kojibot/commands/kojidb"
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
	deps.Log = kojiapi.TestLogger(t)
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
	hub := kojiapi.SeededHub(t, realkoji.Seed{Hosts: []realkoji.SeedHost{twin(viaHub), twin(viaDB)}}, "host")
	ctx := context.Background()
	farm := kojiapi.NewFarm(kojiapi.CertClient(t, hub, nil), kojiapi.FarmOptions{})
	db, err := kojidb.Open(ctx, hub.BotDSN(), kojiapi.BotUser, kojiapi.TestLogger(t))
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
	hub := kojiapi.SeededHub(t, realkoji.Seed{Hosts: []realkoji.SeedHost{{Name: host, Arches: "ppc64", Capacity: 4}}})
	farm := kojiapi.NewFarm(kojiapi.CertClient(t, hub, nil), kojiapi.FarmOptions{})
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
	c, err := kojiapi.New(kojiapi.Options{URL: "https://127.0.0.1:1/kojihub", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	bot := dispatcher(t, commands.Deps{Hub: kojiapi.NewFarm(c, kojiapi.FarmOptions{})})
	for _, cmd := range []string{"hosts", "host ppc3", "capacity ppc3 2"} {
		if got := say(bot, cmd); got != "error: the Koji hub is not answering" {
			t.Errorf("%s: %q", cmd, got)
		}
	}
}

// overrideSeed is a hub with the override tag of f41, foo on its list, the
// build foo-1.0-1, a build host and the bot's user with the tag
// permission.
func overrideSeed(t *testing.T) *realkoji.Hub {
	t.Helper()
	return kojiapi.SeededHub(t, realkoji.Seed{
		Tags:   []realkoji.SeedTag{{Name: "dist-f41-override", Packages: []string{"foo"}}},
		Builds: []realkoji.SeedBuild{{Name: "foo", Version: "1.0", Release: "1"}},
		Hosts:  []realkoji.SeedHost{{Name: builder, Arches: "x86_64 noarch"}},
	}, "tag")
}

// builder is the host whose kojid takes the tagBuild tasks.
const builder = "buildvm-01.fedora.redhat.com"

// webURL is the hub's web UI in these tests.
const webURL = "https://koji.example.org/koji"

// tagged lists the builds in tag.
func tagged(t *testing.T, hub *realkoji.Hub, tag string) []string {
	t.Helper()
	builds, err := hub.Anonymous().Structs(context.Background(), "listTagged", tag)
	if err != nil {
		t.Fatal(err)
	}
	var nvrs []string
	for _, b := range builds {
		nvrs = append(nvrs, fmt.Sprint(b["nvr"]))
	}
	return nvrs
}

// TestOverrideThroughTheHub: with the hub, `override` needs no SSH: it
// calls tagBuild as the bot's Koji user, says the task and its page on the
// web UI, waits while the release's kojid takes the task, and reports the
// outcome; the build is then in the tag. A second override of the same
// build fails in Koji, and the reply says why.
func TestOverrideThroughTheHub(t *testing.T) {
	hub := overrideSeed(t)
	ctx := context.Background()
	farm := kojiapi.NewFarm(kojiapi.CertClient(t, hub, nil), kojiapi.FarmOptions{WebURL: webURL})
	bot := dispatcher(t, commands.Deps{Hub: farm, Tagger: farm})
	k, err := hub.StartKojid(ctx, builder)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	got := say(bot, "override f41 foo-1.0-1")
	t.Logf("replies:\n%s", got)
	task := regexp.MustCompile(`Koji task (\d+) `).FindStringSubmatch(got)
	if task == nil {
		t.Fatalf("no task in %q\n%s", got, k.Output())
	}
	for _, want := range []string{
		"tagging foo-1.0-1 into dist-f41-override: Koji task " + task[1] + " " + webURL + "/taskinfo?taskID=" + task[1],
		"tagged into dist-f41-override: foo-1.0-1 (task " + task[1] + ")",
		"(override f41 foo-1.0-1) done in",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("replies lack %q:\n%s", want, got)
		}
	}
	if nvrs := tagged(t, hub, "dist-f41-override"); !slices.Equal(nvrs, []string{"foo-1.0-1"}) {
		t.Errorf("dist-f41-override holds %q", nvrs)
	}
	v, err := hub.Anonymous().Struct(ctx, "getTaskInfo", mustInt(t, task[1]))
	if err != nil || v["owner"] == nil {
		t.Fatalf("getTaskInfo: %v %v", v, err)
	}
	owner, err := hub.Anonymous().Struct(ctx, "getUser", v["owner"])
	if err != nil || owner["name"] != kojiapi.BotUser {
		t.Errorf("the task's owner is %v (%v), want %s", owner["name"], err, kojiapi.BotUser)
	}

	again := say(bot, "override f41 foo-1.0-1")
	t.Logf("replies:\n%s", again)
	if !strings.Contains(again, "error: job") || !strings.Contains(again, "not tagged into dist-f41-override: foo-1.0-1: Koji task") ||
		!strings.Contains(again, "failed: ") || !strings.Contains(again, "already tagged") {
		t.Errorf("second override:\n%s", again)
	}
}

// TestOverrideRefusedByTheHub: a bot user without the tag permission is
// refused by Koji's tag policy, in the documented words; nothing is
// tagged and no task is made.
func TestOverrideRefusedByTheHub(t *testing.T) {
	hub := kojiapi.SeededHub(t, realkoji.Seed{
		Tags:   []realkoji.SeedTag{{Name: "dist-f41-override", Packages: []string{"foo"}, Perm: "admin"}},
		Builds: []realkoji.SeedBuild{{Name: "foo", Version: "1.0", Release: "1"}},
	})
	farm := kojiapi.NewFarm(kojiapi.CertClient(t, hub, nil), kojiapi.FarmOptions{})
	bot := dispatcher(t, commands.Deps{Hub: farm, Tagger: farm})
	got := say(bot, "override f41 foo-1.0-1")
	if !strings.Contains(got, "kojibot's Koji user lacks the tag permission") {
		t.Errorf("override without the permission:\n%s", got)
	}
	if nvrs := tagged(t, hub, "dist-f41-override"); len(nvrs) != 0 {
		t.Errorf("dist-f41-override holds %q", nvrs)
	}
	tasks, err := hub.Anonymous().Structs(context.Background(), "listTasks")
	if err != nil || len(tasks) != 0 {
		t.Errorf("tasks made: %v %v", tasks, err)
	}
}

// TestCancelWaitingOverride: `cancel` of an override waiting for its task
// (no kojid takes it) cancels the Koji task, and the build stays out of
// the tag.
func TestCancelWaitingOverride(t *testing.T) {
	hub := overrideSeed(t)
	ctx := context.Background()
	farm := kojiapi.NewFarm(kojiapi.CertClient(t, hub, nil), kojiapi.FarmOptions{})
	bot := dispatcher(t, commands.Deps{Hub: farm, Tagger: farm})
	r := &replies{}
	bot.Handle(ctx, commands.Request{Account: "alice", Nick: "alice", Place: "#fedora-admin", Text: "override f41 foo-1.0-1"}, r)
	var job, task string
	deadline := time.Now().Add(30 * time.Second)
	for task == "" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		text := r.text()
		if m := regexp.MustCompile(`job (\S+) started`).FindStringSubmatch(text); m != nil {
			job = m[1]
		}
		if m := regexp.MustCompile(`Koji task (\d+)`).FindStringSubmatch(text); m != nil {
			task = m[1]
		}
	}
	if job == "" || task == "" {
		t.Fatalf("the override did not start its task:\n%s", r.text())
	}
	state := func() int64 {
		v, err := hub.Anonymous().Struct(ctx, "getTaskInfo", mustInt(t, task))
		if err != nil {
			t.Fatal(err)
		}
		return v["state"].(int64)
	}
	if s := state(); s != kojiapi.TaskFree {
		t.Fatalf("task %s is in state %d before the cancel, want FREE", task, s)
	}
	if got := say(bot, "cancel "+job); strings.Contains(got, "error:") {
		t.Fatalf("cancel %s: %q", job, got)
	}
	bot.Wait()
	if s := state(); s != kojiapi.TaskCanceled {
		t.Errorf("task %s is in state %d after the cancel, want CANCELED", task, s)
	}
	if got := r.text(); !strings.Contains(got, "cancelled Koji task "+task+" (foo-1.0-1)") || !strings.Contains(got, "job "+job+" cancelled") {
		t.Errorf("replies:\n%s", got)
	}
	if nvrs := tagged(t, hub, "dist-f41-override"); len(nvrs) != 0 {
		t.Errorf("dist-f41-override holds %q", nvrs)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sayAs runs text as account (its FAS user too) and returns the replies.
func sayAs(d *commands.Dispatcher, account, text string) string {
	r := &replies{}
	d.Handle(context.Background(), commands.Request{Account: account, Nick: account, Place: "#fedora-admin", Text: text}, r)
	d.Wait()
	return r.text()
}

// TestActAsCaller: with act_as_caller (the hub lets the bot's certificate
// log in other users), a change is made in the caller's session and
// `koji list-history` says "by alice"; a caller whose Koji user lacks the
// host permission is refused in their name, and one without a Koji
// account cannot be logged in: the bot says why, and nothing changed.
func TestActAsCaller(t *testing.T) {
	const host = "ppc3.fedora.redhat.com"
	hub := kojiapi.SeededHub(t, realkoji.Seed{
		Users: map[string][]string{"alice": {"host"}, "bob": nil},
		Hosts: []realkoji.SeedHost{{Name: host, Arches: "ppc64", Capacity: 4}},
	})
	ctx := context.Background()
	if err := hub.AllowProxy(ctx, nil, []string{kojiapi.BotUser}); err != nil {
		t.Fatal(err)
	}
	client := kojiapi.CertClient(t, hub, func(o *kojiapi.Options) { o.ActAsCaller = true })
	farm := kojiapi.NewFarm(client, kojiapi.FarmOptions{ActAsCaller: true})
	bot := dispatcher(t, commands.Deps{Hub: farm, Tagger: farm})
	if got := sayAs(bot, "alice", "capacity ppc3 2"); got != host+" capacity 4 → 2 (load 0)" {
		t.Fatalf("capacity as alice: %q", got)
	}
	history, err := hub.CLI(ctx, kojiapi.BotUser, "--noauth", "list-history", "--host", host)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(history, "altered by alice") || strings.Contains(history, "by "+kojiapi.BotUser) {
		t.Errorf("list-history after alice's capacity:\n%s", history)
	}
	if got := sayAs(bot, "bob", "capacity ppc3 3"); !strings.HasPrefix(got, "error: Koji user bob lacks the host permission") {
		t.Errorf("capacity as bob: %q", got)
	}
	if got := sayAs(bot, "carol", "disable ppc3 broken"); !strings.HasPrefix(got, "error: the Koji hub refused the login (Koji: ") ||
		!strings.Contains(got, "carol") {
		t.Errorf("disable as carol (no Koji account): %q", got)
	}
	if got := say(bot, "host ppc3"); !strings.Contains(got, "enabled") || !strings.Contains(got, "capacity 2") {
		t.Errorf("after the refusals: %q", got)
	}
}
