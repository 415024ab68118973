package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/tests/harness/sandbox"
)

// TestStoppedKojidGoesStale: a builder's real kojid keeps its host fresh
// for the stale watch; once its service is stopped the host really stops
// checking in and the watch alerts on it, and once started it checks in
// again.
func TestStoppedKojidGoesStale(t *testing.T) {
	const b = "xenbuilder3"
	name := b + sandbox.KojiDomain
	// Every host without a kojid stays fresh; the builders check in
	// themselves.
	var own []string
	for _, x := range sandbox.Builders {
		own = append(own, x+sandbox.KojiDomain)
	}
	keepCheckingIn(t, own...)
	u, _ := watchBot(t, "kojibot-kojid", nil)
	// Longer than stale_after (8s): the running kojid keeps its host fresh.
	time.Sleep(12 * time.Second)
	if got := notices(u, "stale builder: "+name); len(got) != 0 {
		t.Fatalf("stale alert while its kojid runs: %q", got)
	}
	if out, err := sb.Farm.Service(b, "stop", "kojid"); err != nil {
		t.Fatalf("stop kojid: %v %s", err, out)
	}
	started := false
	t.Cleanup(func() {
		if !started {
			_, _ = sb.Farm.Service(b, "start", "kojid")
		}
	})
	stopped := time.Now()
	alert := waitNotice(t, u, 60*time.Second, "ALERT", "stale builder: "+name+" last checked in")
	t.Logf("alert: %s", alert)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	last, err := sb.Koji.LastCheckin(ctx, sb.Koji.Anonymous(), name)
	if err != nil {
		t.Fatal(err)
	}
	if last.After(stopped) {
		t.Errorf("%s checked in at %v, after its kojid was stopped at %v", name, last, stopped)
	}
	if out, err := sb.Farm.Service(b, "start", "kojid"); err != nil {
		t.Fatalf("start kojid: %v %s", err, out)
	}
	started = true
	if _, err := sb.Koji.WaitCheckin(ctx, name, time.Now(), 30*time.Second); err != nil {
		t.Fatalf("after start: %v\n%s", err, sb.KojidLog(b))
	}
	if strings.Contains(alert, "never") {
		t.Errorf("alert %q: the host had checked in", alert)
	}
}
