package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness"
	"github.com/fedora-infra/kojibot/tests/harness/builders"
	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
	"github.com/fedora-infra/kojibot/tests/harness/realkoji"
)

// The sandbox farm's machines, as the documented example names them.
const (
	HubHost   = "koji-hub"
	AdminHost = "koji-admin"
	XenHost   = "xen4"
	// XenConfigDir is xen.config_dir: a tmpfs inside the xen host only.
	XenConfigDir = "/srv/xen"
	// SharedMount is the hub's shared mount (a small tmpfs), like /mnt/koji.
	SharedMount = "/mnt/koji"
)

// Builders are the sandbox's builders: xenbuilder1 and 2 live on xen4,
// xenbuilder3 is disabled in the xen map, xenbuilder4 has no xen host.
var Builders = []string{"xenbuilder1", "xenbuilder2", "xenbuilder3", "xenbuilder4"}

// farmSpecs are the machines started for the farm; binDir holds the xl
// stand-in the xen host's helper runs.
func farmSpecs(binDir string) []builders.Spec {
	specs := []builders.Spec{
		{Name: HubHost, Mounts: map[string]int{SharedMount: 16}, Services: []string{"httpd", "kojira"}, MockMiB: 4, BuildMiB: 4},
		// The admin host's root runs the koji CLI for `override`, with a
		// Koji identity only root can read, into override tags only.
		{Name: AdminHost, MockMiB: 4, BuildMiB: 4,
			HelperConf: []string{"override_tag dist-*-override", "koji " + filepath.Join(binDir, "koji")}},
		{Name: XenHost, Mounts: map[string]int{XenConfigDir: 1}, MockMiB: 4, BuildMiB: 4,
			HelperConf: []string{"xen_config_dir " + XenConfigDir, "xl " + filepath.Join(binDir, "xl"), "guest xenbuilder1", "guest xenbuilder2"}},
	}
	for _, b := range Builders {
		svcs := []string{"kojid"}
		if b == "xenbuilder2" {
			svcs = append(svcs, "plague-builder")
		}
		spec := builders.Spec{Name: b, MockMiB: 32, BuildMiB: 16, Services: svcs}
		if b == "xenbuilder4" { // no xen host: rebooted over SSH
			spec.HelperConf = []string{"reboot yes"}
		}
		specs = append(specs, spec)
	}
	return specs
}

// The Koji side of the farm: the upstream hub's users, tags and builds
// that `override` works with (the builders' kojids take its tasks).
const (
	// AdminKojiUser is the admin host's own Koji identity (a certificate
	// login), which the bot's `koji` commands there run as.
	AdminKojiUser = AdminHost
	// LockedRelease is a release whose override tag needs the admin
	// permission, which AdminKojiUser lacks.
	LockedRelease = "f9"
)

// KojiDB is the name under which Sandbox.DBs holds the farm's hub
// database (Options.Farm): the bots' koji.db, written by the hub and its
// kojids.
const KojiDB = "koji"

// KojiBotUser is the bots' Koji user (koji.user), with the host
// permission.
const KojiBotUser = "kojibot"

// KojidSleep is the builders' kojid polling interval (sleeptime), in
// seconds: each cycle checks the host in. A few idle kojids on two cores
// stay cheap.
const KojidSleep = 3

// ReconnectGrace is koji.reconnect_grace: two kojid cycles (KojidSleep),
// so that a running kojid checks in within it after a hub restart.
const ReconnectGrace = 2 * KojidSleep * time.Second

// sopHosts are the hub's build hosts, as the Koji SOP names them, added
// with addHost and edited as Koji's admin: ppc1-ppc3 (ppc3 with capacity 4
// and load 1.5), the farm's Builders (each runs a real kojid), two x86-01
// in different data centres (so the short name "x86-01" is ambiguous) and
// a disabled x86-02 that never checks in. The hosts without a kojid check
// in once, as themselves, with the task load given; ppc1 holds the
// expired buildroot of a repo of dist-f40-build, so that the hub has a
// repo.
func sopHosts() []realkoji.SeedHost {
	h := func(name, arches string, capacity, load float64) realkoji.SeedHost {
		return realkoji.SeedHost{Name: name, Arches: arches, Capacity: capacity, TaskLoad: load, CheckIn: true}
	}
	ppc1 := h("ppc1.fedora.redhat.com", "ppc ppc64", 2, 0)
	ppc1.Buildroots = []int{realkoji.BuildrootExpired}
	hosts := []realkoji.SeedHost{
		ppc1,
		h("ppc2.fedora.redhat.com", "ppc ppc64", 2, 0.5),
		h("ppc3.fedora.redhat.com", "ppc ppc64", 4, 1.5),
	}
	for _, b := range Builders {
		// Checked in by their kojids; each in a channel of its own, for
		// the tasks of HoldBuildroot.
		hosts = append(hosts, realkoji.SeedHost{Name: b + KojiDomain, Arches: "i386 x86_64", Capacity: 2,
			Channels: []string{onlyChannel(b)}})
	}
	return append(hosts,
		h("x86-01.phx2.fedoraproject.org", "i386 x86_64", 2, 0),
		h("x86-01.iad2.fedoraproject.org", "x86_64 i686", 3, 0.25),
		realkoji.SeedHost{Name: "x86-02.phx2.fedoraproject.org", Arches: "i386 x86_64", Capacity: 2,
			Disabled: true, Comment: "retired with phx2"},
	)
}

// onlyChannel is the Koji channel that holds builder b alone.
func onlyChannel(b string) string { return "only-" + b }

// HoldBuildroot gives builder b's Koji host the active buildroot id (state
// 0, 1 or 2), as Koji has one: a task that b's kojid runs (sleep, in b's
// own channel) and the buildroot of that task. A running kojid expires
// every active buildroot of its host whose task it does not run, so this
// is the only kind a builder with a live kojid keeps. The hub has no call
// to make a buildroot for a task an other session holds (newBuildRoot
// needs the host's exclusive session, which its kojid has), so the
// buildroot's rows are written as newBuildRoot writes them, through db's
// admin connection. release cancels the task and removes the rows.
func (s *Sandbox) HoldBuildroot(ctx context.Context, db, b string, id int64, state int) (release func(context.Context) error, err error) {
	dsns, ok := s.DBs[db]
	if !ok {
		return nil, fmt.Errorf("sandbox: no database %q", db)
	}
	admin, err := s.Koji.AdminClient(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = admin.Logout(context.Background()) }()
	name := b + KojiDomain
	host, err := admin.Struct(ctx, "getHost", name)
	if err != nil {
		return nil, err
	}
	task, err := admin.Int(ctx, "makeTask", "sleep", []any{3600}, realkoji.Kwargs{"channel": onlyChannel(b)})
	if err != nil {
		return nil, fmt.Errorf("sandbox: sleep task for %s: %w", b, err)
	}
	cancel := func(ctx context.Context) error {
		c, err := s.Koji.AdminClient(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = c.Logout(context.Background()) }()
		_, err = c.Call(ctx, "cancelTask", task)
		return err
	}
	var info map[string]any
	if !harness.WaitFor(ctx, 60*time.Second, func() bool {
		info, err = admin.Struct(ctx, "getTaskInfo", task)
		return err == nil && info["state"] == int64(1) && info["host_id"] == host["id"]
	}) {
		_ = cancel(ctx)
		return nil, fmt.Errorf("sandbox: %s's kojid did not take task %d: %v %v\n%s", b, task, info, err, s.KojidLog(b))
	}
	_, err = dsns.Exec(ctx, `WITH b AS (INSERT INTO buildroot (id, br_type, container_type, container_arch, host_os, host_arch)
		VALUES ($1, 0, 'chroot', 'x86_64', 'fedora', 'x86_64') RETURNING id)
		INSERT INTO standard_buildroot (buildroot_id, host_id, repo_id, task_id, state)
		SELECT b.id, $2, (SELECT min(id) FROM repo), $3, $4 FROM b`, id, host["id"], task, state)
	if err != nil {
		_ = cancel(ctx)
		return nil, fmt.Errorf("sandbox: buildroot %d: %w", id, err)
	}
	return func(ctx context.Context) error {
		err := cancel(ctx)
		for _, q := range []string{"DELETE FROM standard_buildroot WHERE buildroot_id = $1", "DELETE FROM buildroot WHERE id = $1"} {
			if _, e := dsns.Exec(ctx, q, id); e != nil && err == nil {
				err = e
			}
		}
		return err
	}, nil
}

// kojiSeed is what the farm's hub holds: the SOP's hosts (sopHosts) and
// extra, the bots' Koji user, override tags for f8 and f41 (open) and
// LockedRelease (admin only) with foo and bar on their lists, builds of
// them (OverrideBuilds) and the admin host's user.
func kojiSeed(extra []realkoji.SeedHost) realkoji.Seed {
	pkgs := []string{"foo", "bar"}
	seed := realkoji.Seed{
		Users: map[string][]string{AdminKojiUser: nil, KojiBotUser: {"host"}},
		Tags: []realkoji.SeedTag{
			{Name: "dist-f8-override", Packages: pkgs},
			{Name: "dist-f41-override", Packages: pkgs},
			{Name: "dist-" + LockedRelease + "-override", Packages: pkgs, Perm: "admin"},
			{Name: "dist-f40-build", Arches: "ppc ppc64 i386 x86_64"},
		},
		BuildTag: "dist-f40-build",
		Hosts:    append(sopHosts(), extra...),
	}
	for _, nvr := range OverrideBuilds {
		parts := strings.Split(nvr, "-")
		seed.Builds = append(seed.Builds, realkoji.SeedBuild{Name: parts[0], Version: parts[1], Release: parts[2]})
	}
	return seed
}

// OverrideBuilds are the builds the farm's hub has (each can be tagged
// into an override tag once).
var OverrideBuilds = []string{"foo-1.0-1", "foo-1.0-2", "bar-1.0-1", "foo-1.0-1.fc41"}

// kojiWrapper is the admin host's `koji`: it records its arguments (one a
// line) in the sandbox's koji.log for the tests, then runs the release's
// CLI as AdminKojiUser.
const kojiWrapper = `#!/bin/sh
log="$(dirname "$0")/../koji.log"
{ printf '%s\n' "$@"; echo --; } >> "$log"
exec env ENV ARGV "$@"
`

// startKoji starts the upstream hub, seeds it, registers its database as
// DBs[KojiDB] and writes the admin host's koji command.
func (s *Sandbox) startKoji(ctx context.Context) error {
	var err error
	if s.Koji, err = realkoji.Start(ctx); err != nil {
		return err
	}
	seed := kojiSeed(s.opts.KojiHosts)
	if _, err := s.Koji.Seed(ctx, seed); err != nil {
		return err
	}
	var standIns []realkoji.SeedHost
	for _, h := range seed.Hosts {
		if h.CheckIn {
			standIns = append(standIns, h)
		}
	}
	s.checkins.Add(1)
	go s.keepCheckingIn(standIns)
	s.mu.Lock()
	s.DBs[KojiDB] = pgsql.DSNs{Kojibot: s.Koji.BotDSN(), Koji: s.Koji.HubDSN(), Admin: s.Koji.AdminDSN(),
		Database: realkoji.DBName, Gen: pgsql.KojiCurrent}
	s.mu.Unlock()
	// The certificate is root's alone: the bot's user reaches it only
	// through the helper's tag-build.
	argv, env, err := s.Koji.CertCLI(filepath.Join(s.Dir, "standins", "koji"), AdminKojiUser, 0, 0)
	if err != nil {
		return err
	}
	quote := func(words []string) string {
		q := make([]string, len(words))
		for i, w := range words {
			q[i] = shellQuote(w)
		}
		return strings.Join(q, " ")
	}
	script := strings.NewReplacer("ENV", quote(env), "ARGV", quote(argv)).Replace(kojiWrapper)
	return os.WriteFile(filepath.Join(s.binDir, "koji"), []byte(script), 0o755)
}

// CheckInEvery is how often the hosts without a kojid check in (as
// themselves, through the hub), until Close: well within the hub's
// ReadyTimeout (180 s), after which it marks a silent host not ready.
const CheckInEvery = time.Minute

// keepCheckingIn checks hosts in every CheckInEvery, each in a session of
// its own kept open, as their kojids would, until the sandbox closes.
func (s *Sandbox) keepCheckingIn(hosts []realkoji.SeedHost) {
	defer s.checkins.Done()
	sessions := map[string]*realkoji.Client{}
	defer func() {
		for _, c := range sessions {
			_ = c.Logout(context.Background())
		}
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-time.After(CheckInEvery):
		}
		for _, h := range hosts {
			s.mu.Lock()
			hushed := s.hushed[h.Name] > 0
			s.mu.Unlock()
			if hushed {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c := sessions[h.Name]
			if c == nil {
				var err error
				if c, err = s.Koji.HostSession(ctx, h.Name); err != nil {
					cancel()
					continue
				}
				sessions[h.Name] = c
			}
			if _, err := c.Call(ctx, "host.updateHost", h.TaskLoad, true); err != nil {
				delete(sessions, h.Name) // a new session next time
			}
			cancel()
		}
	}
}

// Hush stops the check-ins of the named hosts without a kojid (see
// CheckInEvery) until resume is called: they go silent, as a dead
// builder does.
func (s *Sandbox) Hush(names ...string) (resume func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		s.hushed[n]++
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, n := range names {
			s.hushed[n]--
		}
	}
}

// hubAsService makes the hub machine's httpd service the Koji hub's
// Apache (same port and configuration): `restart master` and `restart
// all` restart the real hub, and the kojids reconnect to it.
func (s *Sandbox) hubAsService(ctx context.Context) error {
	if err := s.Farm.SetServiceCommand(HubHost, "httpd", s.Koji.ApacheServiceLine()); err != nil {
		return err
	}
	s.Koji.StopApache()
	if out, err := s.Farm.Service(HubHost, "restart", "httpd"); err != nil {
		return fmt.Errorf("httpd on %s: %v: %s", HubHost, err, out)
	}
	return s.Koji.WaitUp(ctx, 30*time.Second)
}

// startKojids makes each builder's kojid service the release's kojid,
// logged in as the builder's Koji host (certificate CN=name+KojiDomain),
// as KojidUser, with /etc/mock/koji in the builder's own /etc, polling
// every KojidSleep seconds, and (re)starts it; it waits until each has
// checked in.
func (s *Sandbox) startKojids(ctx context.Context) error {
	since := time.Now()
	for _, b := range Builders {
		setup, err := s.Koji.SetupKojid(b+KojiDomain, realkoji.KojidOptions{SleepTime: KojidSleep, MockConfigDir: true})
		if err != nil {
			return err
		}
		line, err := setup.ServiceLine()
		if err != nil {
			return err
		}
		if err := s.Farm.SetServiceCommand(b, "kojid", line); err != nil {
			return err
		}
		if out, err := s.Farm.Service(b, "restart", "kojid"); err != nil {
			return fmt.Errorf("kojid on %s: %v: %s", b, err, out)
		}
		s.kojidDirs[b] = setup.Dir
	}
	for _, b := range Builders {
		if _, err := s.Koji.WaitCheckin(ctx, b+KojiDomain, since, 30*time.Second); err != nil {
			return fmt.Errorf("%w: %s", err, s.KojidLog(b))
		}
	}
	return nil
}

// KojidLog is the end of what builder b's kojid wrote (its log).
func (s *Sandbox) KojidLog(b string) string {
	out, _ := os.ReadFile(filepath.Join(s.kojidDirs[b], "kojid.out"))
	if len(out) > 4000 {
		out = out[len(out)-4000:]
	}
	return string(out)
}

// xlStandIn asks the sandbox to "reboot" a guest: the sandbox stops the
// guest's sshd and starts it again with empty tmpfs and a new boot id, as
// a reboot would.
const xlStandIn = `#!/bin/sh
[ "$1" = reboot ] && [ -n "$2" ] || { echo "usage: xl reboot <guest>" >&2; exit 1; }
touch "$(dirname "$0")/../reboot-requests/$2"
echo "Rebooting domain $2"
`

// startFarm starts the sshd machines, the upstream Koji hub with a kojid
// (the admin host's koji is its CLI), the xl stand-in and the xen guest
// configs.
func (s *Sandbox) startFarm(ctx context.Context) error {
	dir := filepath.Join(s.Dir, "farm")
	s.binDir = filepath.Join(s.Dir, "standins", "bin")
	// The bot logs in as an unprivileged user: the koji command it runs
	// on the admin host, and its log, must be reachable by that user.
	if err := harness.Traversable(s.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "standins", "reboot-requests"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(s.binDir, 0o755); err != nil {
		return err
	}
	kojiLog := filepath.Join(s.Dir, "standins", "koji.log")
	if err := os.WriteFile(kojiLog, nil, 0o666); err != nil {
		return err
	}
	if err := os.Chmod(kojiLog, 0o666); err != nil { // past the umask
		return err
	}
	// The hub starts beside the machines (they do not need each other).
	kojiDone := make(chan error, 1)
	go func() { kojiDone <- s.startKoji(ctx) }()
	var err error
	s.Farm, err = builders.Start(ctx, dir, farmSpecs(s.binDir))
	kojiErr := <-kojiDone
	if err != nil {
		return err
	}
	if kojiErr != nil {
		return fmt.Errorf("koji: %w", kojiErr)
	}
	if err := s.hubAsService(ctx); err != nil {
		return err
	}
	if err := s.startKojids(ctx); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.binDir, "xl"), []byte(xlStandIn), 0o755); err != nil {
		return err
	}
	for _, g := range []string{"xenbuilder1", "xenbuilder2"} {
		cfg := fmt.Sprintf("name = \"%s\"\nmemory = 4096\nvcpus = 4\ndisk = ['phy:/dev/vg0/%s,xvda,w']\n", g, g)
		if out, err := s.Farm.Exec(XenHost, fmt.Sprintf("printf '%%s' %s > %s/%s", shellQuote(cfg), XenConfigDir, g)); err != nil {
			return fmt.Errorf("xen config %s: %v: %s", g, err, out)
		}
	}
	// The reboot server lives as long as the sandbox (until Close), not
	// as long as the start-up context: a test may ask for a reboot long
	// after the farm came up.
	go s.serveReboots()
	return nil
}

// KojiLog returns what the admin host's koji was called with so far.
func (s *Sandbox) KojiLog() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "standins", "koji.log"))
	return string(b)
}

// Reboots returns how many guest reboots the xl stand-in carried out.
func (s *Sandbox) Reboots() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reboots
}

// newBootID gives a rebooted guest its own /proc/sys/kernel/random/boot_id
// (a file in the guest's own tmpfs bound over it).
const newBootID = `cat /proc/sys/kernel/random/uuid > ` + builders.ServiceStateDir + `/boot_id &&
mount --bind ` + builders.ServiceStateDir + `/boot_id /proc/sys/kernel/random/boot_id`

// serveReboots carries out the xl stand-in's reboot requests until the
// sandbox is closed.
func (s *Sandbox) serveReboots() {
	reqDir := filepath.Join(s.Dir, "standins", "reboot-requests")
	for {
		select {
		case <-s.stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		entries, _ := os.ReadDir(reqDir)
		for _, e := range entries {
			guest := e.Name()
			_ = os.Remove(filepath.Join(reqDir, guest))
			_ = s.Farm.StopHost(guest)
			time.Sleep(time.Second)
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			if err := s.Farm.StartHost(sctx, guest); err == nil {
				// The kernel's boot id is not namespaced: give the guest
				// a new one, as a real reboot would, so that the bot can
				// tell it came back however quickly.
				_, _ = s.Farm.Exec(guest, newBootID)
			}
			cancel()
			s.mu.Lock()
			s.reboots++
			s.mu.Unlock()
		}
	}
}

// farmConfig is the YAML for the farm: ssh, hosts, koji machines, xen,
// disk and cleanup.
func (s *Sandbox) farmConfig() map[string]any {
	ssh := s.Farm.SSH()
	hosts := map[string]any{}
	for name, h := range s.Farm.Hosts() {
		entry := map[string]any{"address": h.Address}
		if len(h.Services) > 0 {
			entry["services"] = h.Services
		}
		hosts[name] = entry
	}
	return map[string]any{
		"ssh": map[string]any{
			"user": ssh.User, "key_file": ssh.KeyFile, "known_hosts": ssh.KnownHosts,
			"connect_timeout": "5s", "command_timeout": "60s", "parallel": 8,
			"helper": ssh.Helper, "reboot_wait": "3m",
		},
		"hosts": hosts,
		"koji": map[string]any{
			"hubs": []string{HubHost}, "admin_host": AdminHost, "reconnect_grace": ReconnectGrace.String(),
			"command": filepath.Join(s.binDir, "koji"),
		},
		"xen": map[string]any{
			"guests":     map[string]any{"xenbuilder1": XenHost, "xenbuilder2": XenHost, "xenbuilder3": "disabled"},
			"config_dir": XenConfigDir,
		},
		"disk": map[string]any{
			"full_percent": 90, "shared_mounts": []string{SharedMount}, "shared_from": HubHost,
			"escalate": []string{"kevin", "nirik"},
		},
		"cleanup": map[string]any{"dirs": []string{builders.MockDir, builders.BuildDir}, "min_age": "168h"},
	}
}

// shellQuote single-quotes s for the farm's Exec scripts.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
