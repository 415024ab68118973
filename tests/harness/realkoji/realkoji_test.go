package realkoji

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hub is the one hub every test here shares (started by TestMain).
var hub *Hub

func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() {
		fmt.Println("skipped with -short: these tests start real servers")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	h, err := Start(ctx)
	if err != nil {
		// A missing package or source is a failure, never a skip.
		fmt.Fprintln(os.Stderr, "FAIL: cannot start the Koji hub:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "realkoji: hub up in %v\n", time.Since(start).Round(time.Millisecond))
	defer h.Close()
	hub = h
	return m.Run()
}

// TestLogins logs in by certificate (Go client) and by Kerberos (the
// release's CLI, GSSAPI through mod_auth_gssapi) and checks who the hub
// says is logged in, and how.
func TestLogins(t *testing.T) {
	ctx := context.Background()
	if err := hub.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := hub.AdminClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.Struct(ctx, "getLoggedInUser")
	if err != nil {
		t.Fatal(err)
	}
	if u["name"] != Admin || u["authtype"] != int64(2) {
		t.Errorf("certificate login: getLoggedInUser = %v, want admin with authtype 2 (SSL)", u)
	}
	out, err := hub.CLI(ctx, Admin, "call", "--json-output", "getLoggedInUser")
	if err != nil {
		t.Fatalf("%v\n%s", err, hub.Logs())
	}
	if !strings.Contains(out, `"name": "admin"`) || !strings.Contains(out, `"authtype": 3`) {
		t.Errorf("Kerberos login: getLoggedInUser = %s, want admin with authtype 3 (GSSAPI)", out)
	}
}

// TestSeed seeds hosts, a bot user, tags, packages, builds and buildroots
// through the API and reads them back through it.
func TestSeed(t *testing.T) {
	ctx := context.Background()
	if err := hub.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	seeded, err := hub.Seed(ctx, Seed{
		Users: map[string][]string{"kojibot": {"host"}},
		Tags: []SeedTag{
			{Name: "dist-f8-build", Arches: "x86_64 ppc", Packages: []string{"foo"}},
			{Name: "dist-f8-override", Packages: []string{"foo"}},
		},
		Builds:   []SeedBuild{{"foo", "1.0", "1"}},
		BuildTag: "dist-f8-build",
		Hosts: []SeedHost{
			{Name: "ppc3.fedora.redhat.com", Arches: "ppc ppc64", Capacity: 4, Description: "POWER7"},
			{Name: "xenbuilder2.fedora.redhat.com", Arches: "x86_64 noarch", Comment: "old", Disabled: true,
				Buildroots: []int{BuildrootInit, BuildrootWaiting, BuildrootBuilding, BuildrootExpired}},
		},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, hub.Logs())
	}
	t.Logf("seeded in %v", time.Since(start).Round(time.Millisecond))
	anon := hub.Anonymous()
	hosts, err := anon.Structs(ctx, "listHosts")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range hosts {
		got[h["name"].(string)] = fmt.Sprintf("%v %v %v %v %v", h["arches"], h["capacity"], h["enabled"], h["description"], h["comment"])
	}
	want := map[string]string{
		"ppc3.fedora.redhat.com":        "ppc ppc64 4 true POWER7 <nil>",
		"xenbuilder2.fedora.redhat.com": "x86_64 noarch 2 false <nil> old",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listHosts:\n got %v\nwant %v", got, want)
	}
	xb := seeded.HostIDs["xenbuilder2.fedora.redhat.com"]
	brs, err := anon.Structs(ctx, "listBuildroots", Kwargs{"hostID": xb, "state": []int{0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	var active []int64
	for _, b := range brs {
		active = append(active, b["id"].(int64))
	}
	all := seeded.Buildroots["xenbuilder2.fedora.redhat.com"]
	if fmt.Sprint(active) != fmt.Sprint(all[:3]) {
		t.Errorf("active buildroots %v, want the first three of %v", active, all)
	}
	u, err := anon.Struct(ctx, "getUser", "kojibot")
	if err != nil || u["krb_principals"] == nil {
		t.Errorf("getUser kojibot = %v, %v", u, err)
	}
	perms, err := anon.Call(ctx, "getUserPerms", "kojibot")
	if err != nil || fmt.Sprint(perms) != "[host]" {
		t.Errorf("getUserPerms kojibot = %v, %v", perms, err)
	}
	tagged, err := hub.CLI(ctx, Admin, "list-pkgs", "--tag", "dist-f8-override", "--quiet")
	if err != nil || !strings.Contains(tagged, "foo") {
		t.Errorf("koji list-pkgs: %q, %v", tagged, err)
	}
	// The line a person pastes into a shell.
	line, err := hub.ShellCommand()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", line+" list-hosts --quiet").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ppc3.fedora.redhat.com") {
		t.Errorf("%s list-hosts: %v\n%s", line, err, out)
	}
}

// TestReset: a reset drops what the previous test made, and the hub
// answers from the fresh database at once.
func TestReset(t *testing.T) {
	ctx := context.Background()
	if err := hub.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Seed(ctx, Seed{Hosts: []SeedHost{{Name: "b1.example.org", Arches: "x86_64"}}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := hub.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("reset in %v", time.Since(start).Round(time.Millisecond))
	for range 2 * apacheWorkers { // every prefork child reconnects
		hosts, err := hub.Anonymous().Structs(ctx, "listHosts")
		if err != nil {
			t.Fatalf("after a reset: %v", err)
		}
		if len(hosts) != 0 {
			t.Fatalf("after a reset, listHosts = %v", hosts)
		}
	}
}

// pidFile reads the process id a daemon wrote.
func pidFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

// TestCloseStopsEverything starts a second hub and requires Close to stop
// Apache (every child), the KDC and PostgreSQL, and to remove its
// directory; Apache's files all lived in that directory.
func TestCloseStopsEverything(t *testing.T) {
	ctx := context.Background()
	h, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apache := pidFile(t, filepath.Join(h.Dir, "apache", "run", "httpd.pid"))
	pg := pidFile(t, filepath.Join(h.PG.Dir(), "data", "postmaster.pid"))
	krb := pidFile(t, filepath.Join(h.KDC.Dir, "kdc.pid"))
	out, err := exec.Command("pgrep", "-g", strconv.Itoa(apache)).Output()
	if err != nil {
		t.Fatal(err)
	}
	children := strings.Fields(string(out))
	if len(children) < 2 {
		t.Fatalf("Apache's process group has %v", children)
	}
	for _, f := range []string{"error.log", "access.log", "httpd.conf"} {
		if _, err := os.Stat(filepath.Join(h.Dir, "apache", f)); err != nil {
			t.Error(err)
		}
	}
	h.Close()
	pids := []int{pg, krb}
	for _, c := range children {
		n, _ := strconv.Atoi(c)
		pids = append(pids, n)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still runs after Close", pid)
		}
	}
	if _, err := os.Stat(h.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Close: %v", h.Dir, err)
	}
}

// TestKojid runs the release's kojid as a host: it checks in, and takes a
// tagBuild task that `koji tag-build --wait` makes; a stopped kojid checks
// in no more.
func TestKojid(t *testing.T) {
	ctx := context.Background()
	if err := hub.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	const host = "buildvm-01.example.org"
	_, err := hub.Seed(ctx, Seed{
		Tags:   []SeedTag{{Name: "dist-f8-override", Packages: []string{"foo"}}},
		Builds: []SeedBuild{{"foo", "1.0", "1"}},
		Hosts:  []SeedHost{{Name: host, Arches: "x86_64 noarch"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	k, err := hub.StartKojid(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	first, err := hub.WaitCheckin(ctx, host, start.Add(-time.Second), 30*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, k.Output())
	}
	t.Logf("checked in %v after start", first.Sub(start).Round(time.Millisecond))
	if _, err := hub.WaitCheckin(ctx, host, first, 15*time.Second); err != nil {
		t.Fatalf("no second check-in: %v\n%s", err, k.Output())
	}
	t0 := time.Now()
	out, err := hub.CLI(ctx, Admin, "tag-build", "--wait", "dist-f8-override", "foo-1.0-1")
	if took := time.Since(t0); took > 20*time.Second {
		t.Errorf("koji tag-build --wait took %v", took)
	}
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, k.Output())
	}
	if !strings.Contains(out, "completed successfully") {
		t.Errorf("koji tag-build --wait: %s", out)
	}
	tagged, err := hub.CLI(ctx, Admin, "--noauth", "list-tagged", "--quiet", "dist-f8-override")
	if err != nil || !strings.Contains(tagged, "foo-1.0-1") {
		t.Errorf("list-tagged: %q, %v", tagged, err)
	}
	k.Stop()
	stopped := time.Now()
	if last, err := hub.WaitCheckin(ctx, host, stopped.Add(time.Second), 4*time.Second); err == nil {
		t.Errorf("a stopped kojid checked in at %v", last)
	}
}
