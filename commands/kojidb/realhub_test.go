package kojidb

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

// The upstream hub, started by the first test that needs it and shared by
// every test here; TestMain stops it.
var (
	realHubOnce sync.Once
	realHub     *realkoji.Hub
	realHubErr  error
)

// upstreamHub returns the shared hub with a fresh database.
func upstreamHub(t *testing.T) *realkoji.Hub {
	t.Helper()
	realHubOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		realHub, realHubErr = realkoji.Start(ctx)
	})
	if realHubErr != nil {
		// A missing package or Koji source is a failure, never a skip.
		t.Fatalf("cannot start the Koji hub: %v", realHubErr)
	}
	if err := realHub.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	return realHub
}

func stopRealHub() {
	if realHub != nil {
		realHub.Close()
	}
}

// The twins: the bot edits botHost, the koji CLI cliHost. Same length, so
// that the CLI's aligned tables line up once the names are replaced.
const (
	botHost  = "ppc3.fedora.redhat.com"
	cliHost  = "ppc4.fedora.redhat.com"
	kojiUser = "kojibot"
)

// twinSeed is the seed of both twins: made identically, through the API.
func twinSeed() realkoji.Seed {
	twin := func(name string) realkoji.SeedHost {
		return realkoji.SeedHost{Name: name, Arches: "ppc ppc64", Capacity: 4, Description: "POWER7, rack 12"}
	}
	return realkoji.Seed{
		Users: map[string][]string{kojiUser: {"host"}},
		Hosts: []realkoji.SeedHost{twin(botHost), twin(cliHost)},
	}
}

// TestWritesMatchKojiCLI makes each change on twin hosts of the upstream
// hub, once through kojidb (as Koji user kojibot) and once through the
// release's `koji` CLI (logged in by Kerberos as the same Koji user), and
// after each step requires the two hosts to be indistinguishable but for
// their names and ids, and the times: the raw host and host_config rows
// (events numbered in order of appearance, creator and revoker by name),
// the events the step took, `koji list-history --host`, `koji list-hosts`,
// and the hub's own reading of the hosts (getHost, listHosts).
func TestWritesMatchKojiCLI(t *testing.T) {
	t.Parallel() // alone on the hub: the other tests of the hub are not parallel
	hub := upstreamHub(t)
	ctx := context.Background()
	if _, err := hub.Seed(ctx, twinSeed()); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, hub.BotDSN(), kojiUser, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	const (
		why  = "OOM, see ticket 42"
		why2 = "fan replaced, burn-in \"48h\" – ✓ O'Neil"
	)
	steps := []struct {
		name string
		bot  func() error
		cli  []string
	}{
		{"capacity 2", func() error { _, _, err := db.SetCapacity(ctx, botHost, 2); return err },
			[]string{"edit-host", "--capacity", "2", cliHost}},
		{"capacity 2 again", func() error { _, _, err := db.SetCapacity(ctx, botHost, 2); return err },
			[]string{"edit-host", "--capacity", "2", cliHost}},
		{"disable with a reason", func() error { _, _, err := db.SetEnabled(ctx, botHost, false, why); return err },
			[]string{"disable-host", "--comment", why, cliHost}},
		{"disable again with a new reason", func() error { _, _, err := db.SetEnabled(ctx, botHost, false, why2); return err },
			[]string{"disable-host", "--comment", why2, cliHost}},
		{"disable again with the same reason", func() error { _, _, err := db.SetEnabled(ctx, botHost, false, why2); return err },
			[]string{"disable-host", "--comment", why2, cliHost}},
		{"disable again without a reason", func() error { _, _, err := db.SetEnabled(ctx, botHost, false, ""); return err },
			[]string{"disable-host", cliHost}},
		{"enable", func() error { _, _, err := db.SetEnabled(ctx, botHost, true, ""); return err },
			[]string{"enable-host", cliHost}},
		{"enable again", func() error { _, _, err := db.SetEnabled(ctx, botHost, true, ""); return err },
			[]string{"enable-host", cliHost}},
		{"capacity 7.5", func() error { _, _, err := db.SetCapacity(ctx, botHost, 7.5); return err },
			[]string{"edit-host", "--capacity", "7.5", cliHost}},
	}
	for _, s := range steps {
		before := eventCount(t, hub)
		if err := s.bot(); err != nil {
			t.Fatalf("%s: kojibot: %v", s.name, err)
		}
		botEvents := eventCount(t, hub) - before
		before = eventCount(t, hub)
		if _, err := hub.CLI(ctx, kojiUser, s.cli...); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		cliEvents := eventCount(t, hub) - before
		if botEvents != cliEvents {
			t.Errorf("%s: kojibot took %d events, koji %s took %d", s.name, botEvents, strings.Join(s.cli, " "), cliEvents)
		}
		compareTwins(t, hub, s.name)
		if t.Failed() {
			t.FailNow()
		}
	}
}

// compareTwins requires every view of botHost to equal the same view of
// cliHost, once the names, ids and times are taken out.
func compareTwins(t *testing.T, hub *realkoji.Hub, step string) {
	t.Helper()
	ctx := context.Background()
	var listHosts string // one run of `koji list-hosts` shows both
	views := []struct {
		name string
		of   func(host string) string
	}{
		{"host_config rows", func(h string) string { return hostConfigRows(t, hub, h) }},
		{"host row", func(h string) string { return hostRow(t, hub, h) }},
		{"koji list-history --host", func(h string) string {
			out, err := hub.CLI(ctx, kojiUser, "--noauth", "list-history", "--host", h)
			if err != nil {
				t.Fatal(err)
			}
			return historyTimes.ReplaceAllString(strings.ReplaceAll(out, h, "HOST"), "TIME")
		}},
		{"koji list-hosts", func(h string) string {
			if listHosts == "" {
				out, err := hub.CLI(ctx, kojiUser, "--noauth", "list-hosts", "--quiet", "--show-channels", "--comment", "--description")
				if err != nil {
					t.Fatal(err)
				}
				listHosts = out
			}
			out := listHosts
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, h+" ") {
					return strings.Replace(line, h, "HOST", 1)
				}
			}
			t.Fatalf("koji list-hosts has no %s:\n%s", h, out)
			return ""
		}},
		{"getHost", func(h string) string {
			v, err := hub.Anonymous().Struct(ctx, "getHost", h)
			if err != nil {
				t.Fatal(err)
			}
			return hubHost(v)
		}},
		{"listHosts", func(h string) string {
			hosts, err := hub.Anonymous().Structs(ctx, "listHosts")
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range hosts {
				if v["name"] == h {
					return hubHost(v)
				}
			}
			t.Fatalf("listHosts has no %s", h)
			return ""
		}},
	}
	for _, v := range views {
		bot, cli := v.of(botHost), v.of(cliHost)
		if bot != cli {
			t.Errorf("after %s, %s differ:\nkojibot's %s:\n%s\nkoji CLI's %s:\n%s", step, v.name, botHost, bot, cliHost, cli)
		}
	}
}

// historyTimes matches the times `koji list-history` starts its lines with.
var historyTimes = regexp.MustCompile(`(?m)^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}`)

// hubHost shows a host as the hub returns it, without id, name, user_id
// and update_ts.
func hubHost(v map[string]any) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		switch k {
		case "id", "name", "user_id", "update_ts":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%#v\n", k, v[k])
	}
	return b.String()
}

// hostConfigRows shows every host_config row of host, by create_event:
// each column but host_id, with events numbered in order of appearance
// among the host's rows, and users by name.
func hostConfigRows(t *testing.T, hub *realkoji.Hub, host string) string {
	t.Helper()
	conn := connect(t, hub.AdminDSN())
	rows, err := conn.Query(context.Background(), `
		SELECT hc.arches, hc.capacity, hc.description, hc.comment, hc.enabled, hc.active,
			hc.create_event, hc.revoke_event, cu.name, ru.name
		FROM host_config hc JOIN host h ON h.id = hc.host_id
		JOIN users cu ON cu.id = hc.creator_id LEFT JOIN users ru ON ru.id = hc.revoker_id
		WHERE h.name = $1 ORDER BY hc.create_event`, host)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		vals           []any
		create, revoke *int64
	}
	var all []row
	var events []int64
	for rows.Next() {
		var r row
		var arches, desc, comment, creator, revoker *string
		var capacity *float64
		var enabled, active *bool
		if err := rows.Scan(&arches, &capacity, &desc, &comment, &enabled, &active, &r.create, &r.revoke, &creator, &revoker); err != nil {
			t.Fatal(err)
		}
		r.vals = []any{deref(arches), deref(capacity), deref(desc), deref(comment), deref(enabled), deref(active), deref(creator), deref(revoker)}
		for _, e := range []*int64{r.create, r.revoke} {
			if e != nil && !slices.Contains(events, *e) {
				events = append(events, *e)
			}
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(events)
	ord := func(e *int64) string {
		if e == nil {
			return "-"
		}
		return fmt.Sprintf("e%d", slices.Index(events, *e)+1)
	}
	var b strings.Builder
	fmt.Fprintln(&b, "arches capacity description comment enabled active creator revoker create revoke")
	for _, r := range all {
		for _, v := range r.vals {
			fmt.Fprintf(&b, "%v | ", v)
		}
		fmt.Fprintf(&b, "%s | %s\n", ord(r.create), ord(r.revoke))
	}
	return b.String()
}

func deref[T any](p *T) any {
	if p == nil {
		return "NULL"
	}
	return *p
}

// hostRow shows host's own row but its id, name, user_id and update_time.
func hostRow(t *testing.T, hub *realkoji.Hub, host string) string {
	t.Helper()
	var load float64
	var ready bool
	err := connect(t, hub.AdminDSN()).QueryRow(context.Background(),
		"SELECT task_load, ready FROM host WHERE name = $1", host).Scan(&load, &ready)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("task_load=%v ready=%v", load, ready)
}

// eventCount is how many events the hub's database has.
func eventCount(t *testing.T, hub *realkoji.Hub) int64 {
	t.Helper()
	var n int64
	if err := connect(t, hub.AdminDSN()).QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestActiveBuildrootsMatchHub requires kojidb's active buildroots of a
// host (what the clean-up keeps) to be exactly the ones the hub lists with
// listBuildroots(hostID, state=[INIT, WAITING, BUILDING]), on buildroots
// made the way kojid makes them.
func TestActiveBuildrootsMatchHub(t *testing.T) {
	hub := upstreamHub(t)
	ctx := context.Background()
	hosts := map[string][]int{
		"xenbuilder2.fedora.redhat.com": {realkoji.BuildrootInit, realkoji.BuildrootExpired, realkoji.BuildrootWaiting,
			realkoji.BuildrootBuilding, realkoji.BuildrootExpired, realkoji.BuildrootBuilding},
		"xenbuilder3.fedora.redhat.com": {realkoji.BuildrootExpired, realkoji.BuildrootBuilding},
		"xenbuilder4.fedora.redhat.com": {realkoji.BuildrootExpired},
		"xenbuilder5.fedora.redhat.com": nil,
	}
	seed := realkoji.Seed{
		Tags:     []realkoji.SeedTag{{Name: "dist-f8-build", Arches: "x86_64"}},
		BuildTag: "dist-f8-build",
	}
	for name, states := range hosts {
		seed.Hosts = append(seed.Hosts, realkoji.SeedHost{Name: name, Arches: "x86_64 noarch", Buildroots: states})
	}
	sort.Slice(seed.Hosts, func(i, j int) bool { return seed.Hosts[i].Name < seed.Hosts[j].Name })
	seeded, err := hub.Seed(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, hub.BotDSN(), kojiUser, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	for name := range hosts {
		brs, err := hub.Anonymous().Structs(ctx, "listBuildroots",
			realkoji.Kwargs{"hostID": seeded.HostIDs[name], "state": []int{realkoji.BuildrootInit, realkoji.BuildrootWaiting, realkoji.BuildrootBuilding}})
		if err != nil {
			t.Fatal(err)
		}
		want := []int64{}
		for _, b := range brs {
			want = append(want, b["id"].(int64))
		}
		slices.Sort(want)
		got, err := db.ActiveBuildroots(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil {
			got = []int64{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: kojidb keeps buildroots %v, the hub lists %v as active", name, got, want)
		}
	}
}

// TestCheckinsOfRealKojid: the check-ins kojidb reads (what `restart all`
// and the stale-builder watch decide on) are the ones the release's kojid
// writes, as the hub reports them (getLastHostUpdate): a running kojid's
// host checked in since a moment just past, a host without kojid never
// did, and a stopped kojid's host stops checking in.
func TestCheckinsOfRealKojid(t *testing.T) {
	hub := upstreamHub(t)
	ctx := context.Background()
	const (
		running = "buildvm-01.fedora.redhat.com"
		silent  = "buildvm-02.fedora.redhat.com"
	)
	_, err := hub.Seed(ctx, realkoji.Seed{Hosts: []realkoji.SeedHost{
		{Name: running, Arches: "x86_64 noarch"}, {Name: silent, Arches: "x86_64 noarch"}}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, hub.BotDSN(), kojiUser, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	k, err := hub.StartKojid(ctx, running)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	restart := time.Now() // as if the hub had restarted now
	if _, err := hub.WaitCheckin(ctx, running, restart, 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, k.Output())
	}
	hosts, err := db.Hosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(restart) // after the read, as restart all measures it
	r, s := hostByName(t, hosts, running), hostByName(t, hosts, silent)
	hubTime, err := hub.LastCheckin(ctx, hub.Anonymous(), running)
	if err != nil {
		t.Fatal(err)
	}
	// kojid may check in again between the two reads: kojidb's may be the
	// same or older, never newer, and within one kojid cycle.
	if d := hubTime.Sub(r.LastCheckin); r.LastCheckin.Before(restart) || d < 0 || d > 3*time.Second {
		t.Errorf("%s: kojidb's last check-in %v, the hub's update_ts %v", running, r.LastCheckin, hubTime)
	}
	if !(r.CheckinAge < elapsed) {
		t.Errorf("%s: check-in age %v, not within the %v since the restart: restart all would restart it", running, r.CheckinAge, elapsed)
	}
	if !s.LastCheckin.IsZero() {
		t.Errorf("%s never ran kojid, kojidb says it checked in at %v", silent, s.LastCheckin)
	}
	if last, err := hub.LastCheckin(ctx, hub.Anonymous(), silent); err != nil || !last.IsZero() {
		t.Errorf("the hub's last check-in of %s = %v, %v; want none", silent, last, err)
	}

	k.Stop()
	stopped := time.Now()
	time.Sleep(2500 * time.Millisecond)
	h, err := db.Host(ctx, running)
	if err != nil {
		t.Fatal(err)
	}
	if since := time.Since(stopped); h.CheckinAge < since {
		t.Errorf("%s: kojid stopped %v ago, but kojidb's check-in age is %v", running, since, h.CheckinAge)
	}
}
