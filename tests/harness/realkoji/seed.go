package realkoji

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Buildroot states, as koji.BR_STATES numbers them.
const (
	BuildrootInit     = 0
	BuildrootWaiting  = 1
	BuildrootBuilding = 2
	BuildrootExpired  = 3
)

// SeedHost is a build host to add (addHost), then to edit as Koji's admin.
type SeedHost struct {
	Name        string
	Arches      string // space-separated, as addHost takes them
	Capacity    float64
	Description string
	Comment     string
	Disabled    bool
	Channels    []string // created when missing; every host is in "default"
	// CheckIn checks the host in once after the seeding, as the host
	// (host.updateHost, what kojid calls every cycle), ready and with
	// TaskLoad: host.update_time is then set and task_load is TaskLoad.
	CheckIn  bool
	TaskLoad float64
	// Buildroots are the states of buildroots to make on the host, through
	// the path kojid takes: a task in a channel of the host alone, opened
	// by the host, repoInit of BuildTag, newBuildRoot, setBuildRootState.
	Buildroots []int
}

// SeedTag is a tag to create (createTag) with packages on its list
// (packageListAdd, owned by Koji's admin).
type SeedTag struct {
	Name     string
	Arches   string
	Packages []string
	// Perm is the permission needed to tag into it ("" for none).
	Perm string
}

// SeedBuild is an empty build to create (createEmptyBuild).
type SeedBuild struct{ Name, Version, Release string }

// Seed is what Seed creates through the hub's API, as Koji's admin.
type Seed struct {
	Hosts  []SeedHost
	Tags   []SeedTag
	Builds []SeedBuild
	// BuildTag is the tag whose repo the seeded buildroots use; it must
	// be among Tags and have arches.
	BuildTag string
	// Users are Koji users to create (createUser, with Principal(name) as
	// their Kerberos principal), with the permissions given.
	Users map[string][]string
}

// Seeded tells what Seed made.
type Seeded struct {
	// HostIDs maps host names to host ids.
	HostIDs map[string]int64
	// Buildroots maps host names to the ids of the buildroots made on it,
	// in the order of SeedHost.Buildroots.
	Buildroots map[string][]int64
}

// Seed creates s through the hub's API, as Koji's admin (hosts, users,
// tags, packages and builds) and as each host (its buildroots), so that
// every row is one Koji wrote.
func (h *Hub) Seed(ctx context.Context, s Seed) (*Seeded, error) {
	admin, err := h.AdminClient(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = admin.Logout(context.Background()) }()
	call := func(method string, args ...any) (any, error) {
		v, err := admin.Call(ctx, method, args...)
		if err != nil {
			return nil, fmt.Errorf("realkoji: seed: %s%v: %w", method, args, err)
		}
		return v, nil
	}
	out := &Seeded{HostIDs: map[string]int64{}, Buildroots: map[string][]int64{}}
	users := make([]string, 0, len(s.Users))
	for u := range s.Users {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		if _, err := call("createUser", u, nil, Principal(u)); err != nil {
			return nil, err
		}
		for _, p := range s.Users[u] {
			if _, err := call("grantPermission", u, p); err != nil {
				return nil, err
			}
		}
	}
	for _, t := range s.Tags {
		kw := Kwargs{}
		if t.Arches != "" {
			kw["arches"] = t.Arches
		}
		if t.Perm != "" {
			kw["perm"] = t.Perm
		}
		if _, err := call("createTag", t.Name, kw); err != nil {
			return nil, err
		}
		for _, p := range t.Packages {
			if _, err := call("packageListAdd", t.Name, p, Kwargs{"owner": Admin}); err != nil {
				return nil, err
			}
		}
	}
	for _, b := range s.Builds {
		if _, err := call("createEmptyBuild", b.Name, b.Version, b.Release, nil); err != nil {
			return nil, err
		}
	}
	for _, sh := range s.Hosts {
		id, err := admin.Int(ctx, "addHost", sh.Name, splitArches(sh.Arches))
		if err != nil {
			return nil, fmt.Errorf("realkoji: seed: addHost %s: %w", sh.Name, err)
		}
		out.HostIDs[sh.Name] = id
		edit := Kwargs{}
		if sh.Capacity != 0 {
			edit["capacity"] = sh.Capacity
		}
		if sh.Description != "" {
			edit["description"] = sh.Description
		}
		if sh.Comment != "" {
			edit["comment"] = sh.Comment
		}
		if len(edit) > 0 {
			if _, err := call("editHost", sh.Name, edit); err != nil {
				return nil, err
			}
		}
		if sh.Disabled {
			if _, err := call("disableHost", sh.Name); err != nil {
				return nil, err
			}
		}
		for _, ch := range sh.Channels {
			if _, err := call("addHostToChannel", sh.Name, ch, Kwargs{"create": true}); err != nil {
				return nil, err
			}
		}
		if len(sh.Buildroots) > 0 {
			brs, err := h.buildroots(ctx, admin, s.BuildTag, sh)
			if err != nil {
				return nil, err
			}
			out.Buildroots[sh.Name] = brs
		}
	}
	if err := h.checkIns(ctx, s.Hosts); err != nil {
		return nil, err
	}
	return out, nil
}

// checkIns checks in the hosts that ask for it, three at a time (the
// hub's workers), each as itself.
func (h *Hub) checkIns(ctx context.Context, hosts []SeedHost) error {
	sem := make(chan struct{}, apacheWorkers)
	errs := make(chan error, len(hosts))
	var wg sync.WaitGroup
	for _, sh := range hosts {
		if !sh.CheckIn {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- h.CheckIn(ctx, sh.Name, sh.TaskLoad, true)
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// HostSession logs in as host name (its certificate) and makes the
// session the host's exclusive one, as kojid does: host.* calls need it.
// The caller logs out.
func (h *Hub) HostSession(ctx context.Context, name string) (*Client, error) {
	c, err := h.Login(ctx, name, nil)
	if err != nil {
		return nil, err
	}
	if _, err := c.Call(ctx, "exclusiveSession", Kwargs{"force": true}); err != nil {
		_ = c.Logout(context.Background())
		return nil, fmt.Errorf("realkoji: exclusiveSession of %s: %w", name, err)
	}
	return c, nil
}

// CheckIn opens a session of host name (HostSession) and calls
// host.updateHost(taskLoad, ready), as kojid does every cycle.
func (h *Hub) CheckIn(ctx context.Context, name string, taskLoad float64, ready bool) error {
	c, err := h.HostSession(ctx, name)
	if err != nil {
		return fmt.Errorf("realkoji: check-in of %s: %w", name, err)
	}
	defer func() { _ = c.Logout(context.Background()) }()
	if _, err := c.Call(ctx, "host.updateHost", taskLoad, ready); err != nil {
		return fmt.Errorf("realkoji: check-in of %s: host.updateHost: %w", name, err)
	}
	return nil
}

// buildroots makes buildroots in the given states on host sh the way a
// kojid does, without mock: a task in a channel of sh alone, which sh
// opens in an exclusive session, then repoInit of tag, newBuildRoot and
// setBuildRootState for each.
func (h *Hub) buildroots(ctx context.Context, admin *Client, tag string, sh SeedHost) ([]int64, error) {
	channel := "only-" + sh.Name
	if _, err := admin.Call(ctx, "addHostToChannel", sh.Name, channel, Kwargs{"create": true}); err != nil {
		return nil, fmt.Errorf("realkoji: seed: channel for %s: %w", sh.Name, err)
	}
	task, err := admin.Int(ctx, "makeTask", "sleep", []any{3600}, Kwargs{"channel": channel})
	if err != nil {
		return nil, fmt.Errorf("realkoji: seed: task for %s: %w", sh.Name, err)
	}
	host, err := h.Login(ctx, sh.Name, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = host.Logout(context.Background()) }()
	step := func(method string, args ...any) (any, error) {
		v, err := host.Call(ctx, method, args...)
		if err != nil {
			return nil, fmt.Errorf("realkoji: seed: as %s: %s%v: %w", sh.Name, method, args, err)
		}
		return v, nil
	}
	if _, err := step("exclusiveSession", Kwargs{"force": true}); err != nil {
		return nil, err
	}
	if _, err := step("host.openTask", task); err != nil {
		return nil, err
	}
	v, err := step("host.repoInit", tag, task)
	if err != nil {
		return nil, err
	}
	repo, ok := v.([]any)
	if !ok || len(repo) == 0 {
		return nil, fmt.Errorf("realkoji: seed: repoInit answered %v", v)
	}
	repoID, _ := repo[0].(int64)
	arch := splitArches(sh.Arches)
	if len(arch) == 0 {
		return nil, fmt.Errorf("realkoji: seed: host %s has no arches", sh.Name)
	}
	var ids []int64
	for _, state := range sh.Buildroots {
		v, err := step("host.newBuildRoot", repoID, arch[0], task)
		if err != nil {
			return nil, err
		}
		br, _ := v.(int64)
		// A buildroot starts INIT; kojid moves it on in this order.
		for s := BuildrootWaiting; s <= state; s++ {
			if _, err := step("host.setBuildRootState", br, s, task); err != nil {
				return nil, err
			}
		}
		ids = append(ids, br)
	}
	return ids, nil
}

func splitArches(s string) []string { return strings.Fields(s) }
