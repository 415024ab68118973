package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/watch"
	"github.com/fedora-infra/kojibot/commands/watch/trend"
	"github.com/fedora-infra/kojibot/config"
)

// TestDiskSaysTheRate: with the watcher's readings of a mount, `disk`
// says how fast it fills; without them, nothing more than df.
func TestDiskSaysTheRate(t *testing.T) {
	cfg := config.Default()
	cfg.Hosts = map[string]config.Host{"xb1": {Address: "xb1:22"}, "koji-hub": {Address: "koji-hub:22"}}
	cfg.Disk.Mounts = []string{"/var/lib/mock", "/mnt/build"}
	cfg.Disk.SharedFrom, cfg.Disk.SharedMounts = "koji-hub", []string{"/mnt/koji"}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	samples := watch.NewMemorySamples(watch.SampleKeep, cfg.Watch.Interval)
	for i, p := range []float64{46, 48, 50} {
		samples.Append("disk:xb1:/var/lib/mock", trend.Sample{At: now.Add(time.Duration(i-2) * time.Hour), Percent: p})
	}
	for i, p := range []float64{40, 45, 50} {
		samples.Append("shared:koji-hub:/mnt/koji", trend.Sample{At: now.Add(time.Duration(i-2) * time.Hour), Percent: p})
	}
	d := New(Deps{Config: cfg, DB: &fakeDB{}, Fleet: &fakeFleet{run: localRun}, Samples: samples,
		ACL: fakeACL{members: map[string]bool{"alice": true}}, Now: func() time.Time { return now }})
	t.Cleanup(d.Close)

	got := run(d, "alice", "disk xb1")
	if !strings.Contains(got, "/var/lib/mock 50% (50.0 MiB free), +2.0%/h, full in about 1 d 1 h") ||
		!strings.HasSuffix(got, "/mnt/build 50% (50.0 MiB free)") {
		t.Errorf("disk xb1: %q", got)
	}
	for _, text := range []string{"disk shared", "disk koji-hub"} {
		if got := run(d, "alice", text); !strings.Contains(got, "/mnt/koji 50% (50.0 MiB free), +5.0%/h, full in about 10 h") {
			t.Errorf("%s: %q", text, got)
		}
	}
}
