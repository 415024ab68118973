package kojiapi

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

// The twins: the Farm edits farmBotHost, the koji CLI farmCLIHost. Same
// length, so that the CLI's aligned tables line up once the names are
// replaced.
const (
	farmBotHost = "ppc3.fedora.redhat.com"
	farmCLIHost = "ppc4.fedora.redhat.com"
)

// twinSeed makes both twins identically, through the API.
func twinSeed() realkoji.Seed {
	twin := func(name string) realkoji.SeedHost {
		return realkoji.SeedHost{Name: name, Arches: "ppc ppc64", Capacity: 4, Description: "POWER7, rack 12"}
	}
	return realkoji.Seed{Hosts: []realkoji.SeedHost{twin(farmBotHost), twin(farmCLIHost)}}
}

// testFarm is a Farm of hub logged in by certificate as botUser.
func testFarm(t *testing.T, hub *realkoji.Hub) *Farm {
	t.Helper()
	return NewFarm(certClient(t, hub, nil), FarmOptions{})
}

// historyTimes matches the times `koji list-history` starts its lines with.
var historyTimes = regexp.MustCompile(`(?m)^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}`)

// history is `koji list-history --host host` with the host's name and the
// times taken out.
func history(t *testing.T, hub *realkoji.Hub, host string) string {
	t.Helper()
	out, err := hub.CLI(context.Background(), botUser, "--noauth", "list-history", "--host", host)
	if err != nil {
		t.Fatal(err)
	}
	return historyTimes.ReplaceAllString(strings.ReplaceAll(out, host, "HOST"), "TIME")
}

// hubView shows getHost's answer without id, name, user_id and update_ts.
func hubView(t *testing.T, hub *realkoji.Hub, host string) string {
	t.Helper()
	v, err := hub.Anonymous().Struct(context.Background(), "getHost", host)
	if err != nil {
		t.Fatal(err)
	}
	return realkoji.HostConfig(v)
}

// TestFarmWritesMatchKojiCLI makes each change on twin hosts of the
// upstream hub, once through the Farm (logged in as the bot's Koji user)
// and once through the release's `koji` CLI (logged in by Kerberos as the
// same user), and after each step requires `koji list-history --host` and
// getHost to be the same for both but for the names and times: the same
// entries, each "by kojibot". It also checks what the Farm returns as
// before and after, which the replies are made of. Before some steps the
// bot's session is expired (as the hub's SessionRenewalTimeout does) or
// the hub's Apache restarted: the Farm logs in again or reconnects, and
// the history shows no double write.
func TestFarmWritesMatchKojiCLI(t *testing.T) {
	hub := seededHub(t, twinSeed(), "host")
	f := testFarm(t, hub)
	ctx := context.Background()
	const (
		why  = "OOM, see ticket 42"
		why2 = "fan replaced, burn-in \"48h\" – ✓ O'Neil"
	)
	type state struct {
		capacity float64
		enabled  bool
		comment  string
	}
	expire := func() {
		if _, err := hubDB(t, hub).Exec(ctx, "UPDATE sessions SET expired = true"); err != nil {
			t.Fatal(err)
		}
	}
	restart := func() {
		if err := hub.RestartApache(ctx); err != nil {
			t.Fatal(err)
		}
	}
	disrupt := map[string]func(){"capacity 2 again": expire, "disable with a reason": expire,
		"disable again with a new reason": restart, "enable": expire}
	steps := []struct {
		name          string
		bot           func() (before, after kojidb.Host, err error)
		cli           []string
		before, after state
	}{
		{"capacity 2", func() (kojidb.Host, kojidb.Host, error) { return f.SetCapacity(ctx, farmBotHost, 2) },
			[]string{"edit-host", "--capacity", "2", farmCLIHost}, state{4, true, ""}, state{2, true, ""}},
		{"capacity 2 again", func() (kojidb.Host, kojidb.Host, error) { return f.SetCapacity(ctx, farmBotHost, 2) },
			[]string{"edit-host", "--capacity", "2", farmCLIHost}, state{2, true, ""}, state{2, true, ""}},
		{"disable with a reason", func() (kojidb.Host, kojidb.Host, error) { return f.SetEnabled(ctx, farmBotHost, false, why) },
			[]string{"disable-host", "--comment", why, farmCLIHost}, state{2, true, ""}, state{2, false, why}},
		{"disable again with a new reason", func() (kojidb.Host, kojidb.Host, error) { return f.SetEnabled(ctx, farmBotHost, false, why2) },
			[]string{"disable-host", "--comment", why2, farmCLIHost}, state{2, false, why}, state{2, false, why2}},
		{"disable again with the same reason", func() (kojidb.Host, kojidb.Host, error) { return f.SetEnabled(ctx, farmBotHost, false, why2) },
			[]string{"disable-host", "--comment", why2, farmCLIHost}, state{2, false, why2}, state{2, false, why2}},
		{"disable again without a reason", func() (kojidb.Host, kojidb.Host, error) { return f.SetEnabled(ctx, farmBotHost, false, "") },
			[]string{"disable-host", farmCLIHost}, state{2, false, why2}, state{2, false, why2}},
		{"enable", func() (kojidb.Host, kojidb.Host, error) { return f.SetEnabled(ctx, farmBotHost, true, "") },
			[]string{"enable-host", farmCLIHost}, state{2, false, why2}, state{2, true, why2}},
		{"enable again", func() (kojidb.Host, kojidb.Host, error) { return f.SetEnabled(ctx, farmBotHost, true, "") },
			[]string{"enable-host", farmCLIHost}, state{2, true, why2}, state{2, true, why2}},
		{"capacity 7.5", func() (kojidb.Host, kojidb.Host, error) { return f.SetCapacity(ctx, farmBotHost, 7.5) },
			[]string{"edit-host", "--capacity", "7.5", farmCLIHost}, state{2, true, why2}, state{7.5, true, why2}},
	}
	for _, s := range steps {
		if d := disrupt[s.name]; d != nil {
			d()
		}
		before, after, err := s.bot()
		if err != nil {
			t.Fatalf("%s: the Farm: %v", s.name, err)
		}
		if _, err := hub.CLI(ctx, botUser, s.cli...); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for _, c := range []struct {
			what string
			h    kojidb.Host
			want state
		}{{"before", before, s.before}, {"after", after, s.after}} {
			if got := (state{c.h.Capacity, c.h.Enabled, c.h.Comment}); got != c.want || c.h.Name != farmBotHost {
				t.Errorf("%s: %s = %s %+v, want %+v", s.name, c.what, c.h.Name, got, c.want)
			}
		}
		bot, cli := history(t, hub, farmBotHost), history(t, hub, farmCLIHost)
		if bot != cli {
			t.Fatalf("after %s, koji list-history differs:\nthe Farm's:\n%s\nthe koji CLI's:\n%s", s.name, bot, cli)
		}
		if bv, cv := hubView(t, hub, farmBotHost), hubView(t, hub, farmCLIHost); bv != cv {
			t.Fatalf("after %s, getHost differs:\nthe Farm's:\n%s\nthe koji CLI's:\n%s", s.name, bv, cv)
		}
	}
	// The Farm logged in by certificate (authtype 2) once, then once after
	// each expiry; the CLI's logins are Kerberos (3).
	if n := scalar[int64](t, hubDB(t, hub), `SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE u.name = $1 AND s.authtype = 2`, botUser); n != 4 {
		t.Errorf("the Farm opened %d sessions, want 4 (one, and one after each of 3 expiries)", n)
	}
	// Every change after the seed (Koji's admin's) is the bot's user's.
	h := history(t, hub, farmBotHost)
	if n := strings.Count(h, " by "+botUser); n != strings.Count(h, " by ")-strings.Count(h, " by "+realkoji.Admin) || n < 8 {
		t.Errorf("list-history: %d entries by %s:\n%s", n, botUser, h)
	}
}

// TestFarmReads: Hosts, Host and ActiveBuildroots return what the hub
// holds, as kojidb would: sorted hosts with their configuration, an
// unknown name wrapping kojidb.ErrNoHost, and the buildroots in state
// INIT, WAITING or BUILDING.
func TestFarmReads(t *testing.T) {
	const (
		busy = "xenbuilder2.fedora.redhat.com"
		idle = "xenbuilder3.fedora.redhat.com"
	)
	seed := realkoji.Seed{
		Tags:     []realkoji.SeedTag{{Name: "dist-f8-build", Arches: "x86_64"}},
		BuildTag: "dist-f8-build",
		Hosts: []realkoji.SeedHost{
			{Name: idle, Arches: "x86_64", Capacity: 3, Comment: "spare", Disabled: true, Buildroots: []int{realkoji.BuildrootExpired}},
			{Name: busy, Arches: "x86_64 noarch", Capacity: 8, Description: "rack 4",
				Buildroots: []int{realkoji.BuildrootInit, realkoji.BuildrootExpired, realkoji.BuildrootWaiting, realkoji.BuildrootBuilding}},
		},
	}
	hub := upstreamHub(t)
	seed.Users = map[string][]string{botUser: nil}
	seeded, err := hub.Seed(context.Background(), seed)
	if err != nil {
		t.Fatal(err)
	}
	f := testFarm(t, hub)
	ctx := context.Background()
	hosts, err := f.Hosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range hosts {
		names = append(names, h.Name)
	}
	if !slices.Equal(names, []string{busy, idle}) {
		t.Fatalf("Hosts = %q", names)
	}
	b, i := hosts[0], hosts[1]
	if b.ID != seeded.HostIDs[busy] || b.Arches != "x86_64 noarch" || b.Capacity != 8 || !b.Enabled || b.Description != "rack 4" || b.Comment != "" {
		t.Errorf("%s: %+v", busy, b)
	}
	if i.Capacity != 3 || i.Enabled || i.Comment != "spare" || !i.LastCheckin.IsZero() {
		t.Errorf("%s: %+v", idle, i)
	}
	one, err := f.Host(ctx, busy)
	if err != nil || one != b {
		t.Errorf("Host(%s) = %+v, %v; Hosts had %+v", busy, one, err, b)
	}
	if _, err := f.Host(ctx, "nosuch.fedora.redhat.com"); !errors.Is(err, kojidb.ErrNoHost) {
		t.Errorf("Host(nosuch) = %v, want ErrNoHost", err)
	}
	brs := seeded.Buildroots[busy]
	want := []int64{brs[0], brs[2], brs[3]}
	slices.Sort(want)
	if got, err := f.ActiveBuildroots(ctx, busy); err != nil || !slices.Equal(got, want) {
		t.Errorf("ActiveBuildroots(%s) = %v, %v; want %v", busy, got, err, want)
	}
	if got, err := f.ActiveBuildroots(ctx, idle); err != nil || len(got) != 0 {
		t.Errorf("ActiveBuildroots(%s) = %v, %v; want none", idle, got, err)
	}
	if _, err := f.ActiveBuildroots(ctx, "nosuch.fedora.redhat.com"); !errors.Is(err, kojidb.ErrNoHost) {
		t.Errorf("ActiveBuildroots(nosuch) = %v, want ErrNoHost", err)
	}
}

// TestFarmWithoutHostPermission: a bot user without the host permission
// is refused by the hub; the error says so in the documented words, and
// nothing changed (list-history is as it was).
func TestFarmWithoutHostPermission(t *testing.T) {
	hub := seededHub(t, twinSeed()) // no permission
	f := testFarm(t, hub)
	ctx := context.Background()
	before := history(t, hub, farmBotHost)
	view := hubView(t, hub, farmBotHost)
	for name, do := range map[string]func() error{
		"capacity": func() error { _, _, err := f.SetCapacity(ctx, farmBotHost, 2); return err },
		"disable":  func() error { _, _, err := f.SetEnabled(ctx, farmBotHost, false, "broken fan"); return err },
		"enable":   func() error { _, _, err := f.SetEnabled(ctx, farmBotHost, true, ""); return err },
	} {
		err := do()
		var perm *PermissionError
		if !errors.As(err, &perm) || perm.Perm != "host" {
			t.Fatalf("%s: %v, want a PermissionError for host", name, err)
		}
		if !strings.HasPrefix(perm.Reply(), "kojibot's Koji user lacks the host permission") || !strings.HasSuffix(perm.Reply(), "nothing was changed") {
			t.Errorf("%s: reply %q", name, perm.Reply())
		}
	}
	if after := history(t, hub, farmBotHost); after != before {
		t.Errorf("refused writes changed the history:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if after := hubView(t, hub, farmBotHost); after != view {
		t.Errorf("refused writes changed the host:\nbefore:\n%s\nafter:\n%s", view, after)
	}
}

// TestFarmCheckins: the check-in the Farm reads (update_ts, what `restart
// all` and the stale watch decide on) is the one the release's kojid
// writes: a running kojid's host checked in since a moment just past, its
// age within the time since; a host without kojid never did.
func TestFarmCheckins(t *testing.T) {
	const (
		running = "buildvm-01.fedora.redhat.com"
		silent  = "buildvm-02.fedora.redhat.com"
	)
	hub := upstreamHub(t)
	ctx := context.Background()
	if _, err := hub.Seed(ctx, realkoji.Seed{Hosts: []realkoji.SeedHost{
		{Name: running, Arches: "x86_64 noarch"}, {Name: silent, Arches: "x86_64 noarch"}}}); err != nil {
		t.Fatal(err)
	}
	f := NewFarm(anonClient(t, hub), FarmOptions{})
	k, err := hub.StartKojid(ctx, running)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	restart := time.Now()
	if _, err := hub.WaitCheckin(ctx, running, restart, 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, k.Output())
	}
	hosts, err := f.Hosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(restart)
	byName := map[string]kojidb.Host{}
	for _, h := range hosts {
		byName[h.Name] = h
	}
	r, s := byName[running], byName[silent]
	hubTime, err := hub.LastCheckin(ctx, hub.Anonymous(), running)
	if err != nil {
		t.Fatal(err)
	}
	if d := hubTime.Sub(r.LastCheckin); r.LastCheckin.Before(restart) || d < 0 || d > 3*time.Second {
		t.Errorf("%s: the Farm's last check-in %v, the hub's update_ts %v", running, r.LastCheckin, hubTime)
	}
	if !(r.CheckinAge < elapsed) {
		t.Errorf("%s: check-in age %v, not within the %v since the restart", running, r.CheckinAge, elapsed)
	}
	if !s.LastCheckin.IsZero() {
		t.Errorf("%s never ran kojid, the Farm says it checked in at %v", silent, s.LastCheckin)
	}
}

// anonClient is a Client of hub without a login (Options.Auth empty).
func anonClient(t *testing.T, hub *realkoji.Hub) *Client {
	t.Helper()
	c, err := New(Options{URL: hub.URL, CAFile: hub.CACert(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestFarmPing: Ping succeeds on the real hub and fails, as
// ErrNotAnswering, once Apache no longer listens.
func TestFarmPing(t *testing.T) {
	hub := seededHub(t, realkoji.Seed{})
	ctx := context.Background()
	if err := testFarm(t, hub).Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	down, err := New(Options{URL: "https://127.0.0.1:1/kojihub", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(down.Close)
	if err := NewFarm(down, FarmOptions{}).Ping(ctx); !errors.Is(err, ErrNotAnswering) {
		t.Errorf("Ping of a closed port: %v, want ErrNotAnswering", err)
	}
}
