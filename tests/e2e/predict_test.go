package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// growRate fills path on host so that it holds perSecond bytes for every
// second since start (fallocate, so the bytes are really used), every
// 100ms, until stop is closed.
func growRate(t *testing.T, host, path string, perSecond float64, stop <-chan struct{}) <-chan struct{} {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			size := int64(perSecond * time.Since(start).Seconds())
			if size > 0 {
				if out, err := sb.Farm.Exec(host, fmt.Sprintf("fallocate -l %d %s", size, path)); err != nil {
					t.Errorf("growing %s on %s: %v %s", path, host, err, out)
					return
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return done
}

// diskRate is the rate `disk` says for mount in reply, in %/h.
func diskRate(t *testing.T, reply, mount string) float64 {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(mount) + ` [0-9.]+% \([^)]*\), ([+-][0-9.]+)%/h`).FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("no rate for %s in %q", mount, reply)
	}
	r, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPredictFillRate: a builder's mount filled at a known rate is said to
// fill at that rate (within 20%), in `disk` and in the early warning; after
// a clean-up, at the new rate.
func TestPredictFillRate(t *testing.T) {
	const (
		host  = "xenbuilder1"
		mount = "/mnt/build"
		file  = mount + "/kojibot-predict"
	)
	size := 16 << 20 // the sandbox builder's /mnt/build, in bytes
	t.Cleanup(func() { _, _ = sb.Farm.Exec(host, "rm -f "+file) })
	// Something to clean up first, so that the readings before the
	// test's own filling are not fitted.
	if out, err := sb.Farm.Exec(host, fmt.Sprintf("fallocate -l %d %s", 6<<20, file)); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	u, _ := watchBot(t, "kojibot-predict", map[string]any{"watch": map[string]any{"interval": "1s"}})
	time.Sleep(2 * time.Second) // the watcher reads it full

	phase := func(name string, perSecond float64) {
		t.Helper()
		if out, err := sb.Farm.Exec(host, "rm -f "+file); err != nil { // the clean-up
			t.Fatalf("%v %s", err, out)
		}
		stop := make(chan struct{})
		done := growRate(t, host, file, perSecond, stop)
		time.Sleep(7 * time.Second)
		reply := u.ask("disk " + host)
		close(stop)
		<-done
		got := diskRate(t, reply, mount)
		truth := perSecond * 3600 / float64(size) * 100
		t.Logf("%s: %s (truth %+.1f%%/h)", name, reply, truth)
		if got < 0.8*truth || got > 1.2*truth {
			t.Errorf("%s: rate %+.1f%%/h, want %+.1f%%/h ± 20%%", name, got, truth)
		}
	}
	phase("filling", 1<<20)
	// Filling that fast is full within minutes: one early warning.
	warn := waitNotice(t, u, 10*time.Second, "WARNING disk "+host+" "+mount)
	if !strings.Contains(warn, "%/h, full in under a minute") || !strings.Contains(warn, "predicted full within 6h") {
		t.Errorf("warning %q", warn)
	}
	phase("after a clean-up", 1<<19)
	if n := len(notices(u, "WARNING disk "+host+" "+mount)); n > 2 {
		t.Errorf("%d warnings: %q", n, notices(u, "WARNING disk"))
	}
}
