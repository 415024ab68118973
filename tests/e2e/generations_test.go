package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fedora-infra/kojibot/tests/harness/builders"
	"github.com/fedora-infra/kojibot/tests/harness/pgsql"
	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// genExec runs `kojibot exec --as alice --yes -- args...` with config path
// in a time zone other than the database's (PGTZ and TZ Asia/Tokyo, the
// database UTC), and returns its output; a failure to run is fatal.
func genExec(t *testing.T, path string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"exec", "--config", path, "--as", "alice", "--yes", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "PGTZ=Asia/Tokyo", "TZ=Asia/Tokyo")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("kojibot exec %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// genRow reads host name's capacity, enabled and comment as Koji has them
// now.
func genRow(t *testing.T, db pgsql.DSNs, name string) (capacity float64, enabled bool, comment string) {
	t.Helper()
	q := "SELECT capacity, enabled, coalesce(comment, '') FROM host WHERE name = $1"
	if db.Gen != pgsql.Koji16 && db.Gen != pgsql.Koji110 && db.Gen != pgsql.Koji115 {
		q = `SELECT hc.capacity, hc.enabled, coalesce(hc.comment, '') FROM host h
			JOIN host_config hc ON hc.host_id = h.id AND hc.active IS TRUE WHERE h.name = $1`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, q, name).Scan(&capacity, &enabled, &comment); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return capacity, enabled, comment
}

var genCheckinRe = regexp.MustCompile(`(?m)^ppc3\.fedora\.redhat\.com +yes +yes +1\.5 +4 +([0-9]+)s ago$`)

// TestKojiGenerations: one conversation, through `kojibot exec`, on every
// generation of Koji's schema written from upstream (1.6, 1.10, 1.15,
// 1.16-1.21, 1.32, current), with the bot in Asia/Tokyo and the database
// in UTC: hosts and host show check-ins seconds old (not 9 hours),
// capacity, disable with a reason and enable change what Koji shows,
// cleanup --dry-run keeps the buildroot Koji still uses, restart all
// leaves alone the builder that checked in since the hub restart, and
// connections answers.
func TestKojiGenerations(t *testing.T) {
	// Each generation has its own database and bot config, so they run
	// side by side; what acts on the farm's shared builders (the clean-up
	// dry run, restart all) takes turns.
	var farm sync.Mutex
	for i, gen := range pgsql.UpstreamGenerations {
		t.Run(gen.String(), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			name := fmt.Sprintf("koji_gen%d", i)
			seed := pgsql.DefaultSeed()
			seed.TimeZone = "UTC"
			db, err := sb.CreateDBSeed(ctx, name, gen, seed)
			if err != nil {
				t.Fatal(err)
			}
			path, err := sb.WriteConfig(ctx, sandbox.BotConfig{Nick: fmt.Sprintf("kbgen%d", i), DB: name, Channel: fmt.Sprintf("#kbgen%d", i)})
			if err != nil {
				t.Fatal(err)
			}

			out := genExec(t, path, "hosts")
			m := genCheckinRe.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("hosts: no seconds-old check-in of ppc3:\n%s", out)
			}
			if out := genExec(t, path, "host", "ppc3"); !regexp.MustCompile(`last check-in \S+ \S+ UTC \([0-9]+s ago\)`).MatchString(out) {
				t.Errorf("host ppc3: check-in not seconds old:\n%s", out)
			}

			genExec(t, path, "capacity", "ppc3", "3")
			if c, _, _ := genRow(t, db, "ppc3.fedora.redhat.com"); c != 3 {
				t.Errorf("capacity after `capacity ppc3 3`: %v", c)
			}
			genExec(t, path, "disable", "ppc1", "disk", "full")
			if _, en, comment := genRow(t, db, "ppc1.fedora.redhat.com"); en || !strings.Contains(comment, "disk full") {
				t.Errorf("after disable: enabled %v, comment %q", en, comment)
			}
			genExec(t, path, "enable", "ppc1")
			if _, en, _ := genRow(t, db, "ppc1.fedora.redhat.com"); !en {
				t.Errorf("after enable: still disabled")
			}

			farm.Lock()
			defer farm.Unlock()
			// cleanup --dry-run: an old buildroot Koji still uses is kept.
			active, expired := int64(81000+10*i), int64(81001+10*i)
			if err := db.AddBuildroot(ctx, bldKojiName, active, 1); err != nil {
				t.Fatal(err)
			}
			if err := db.AddBuildroot(ctx, bldKojiName, expired, 3); err != nil {
				t.Fatal(err)
			}
			dirs := fmt.Sprintf("f40-build-%d-55 f40-build-%d-55", active, expired)
			bldCleanup(t, bldBuilder, "cd "+builders.MockDir+" && rm -rf "+dirs)
			bldExec(t, bldBuilder, "cd "+builders.MockDir+" && for d in "+dirs+"; do mkdir -p $d/root; done && touch -h -d '10 days ago' "+dirs)
			out = genExec(t, path, "cleanup", bldBuilder, "--dry-run")
			if !strings.Contains(out, "dry run, nothing will change") || !strings.Contains(out, "1 active in Koji") {
				t.Errorf("cleanup --dry-run:\n%s\nwant a dry run keeping 1 active in Koji", out)
			}

			// restart all: xenbuilder1 keeps checking in (written as the
			// hub writes it, in the database's zone); the others stand
			// still a minute ago.
			for _, b := range sandbox.Builders {
				if err := db.SetUpdateTime(ctx, b+".fedora.redhat.com", time.Now().Add(-time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var beatErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(500 * time.Millisecond)
				defer tick.Stop()
				for {
					if err := db.SetUpdateTime(context.Background(), "xenbuilder1.fedora.redhat.com", time.Now()); err != nil {
						beatErr = err
						return
					}
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				}
			}()
			out = genExec(t, path, "restart", "all")
			close(stop)
			wg.Wait()
			if beatErr != nil {
				t.Fatal(beatErr)
			}
			if !strings.Contains(out, "1 builder checked in since the hub restart; 3 did not and will be restarted: xenbuilder2, xenbuilder3, xenbuilder4") {
				t.Errorf("restart all:\n%s", out)
			}

			if out := genExec(t, path, "connections"); strings.Contains(out, "error:") {
				t.Errorf("connections:\n%s", out)
			}
		})
	}
}
