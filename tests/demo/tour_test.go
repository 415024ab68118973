package main

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTour plays the tour (`make tour`) against the real sandbox and checks
// the transcript's key lines, in order: help, the watcher's alerts, bob
// denied, alice's capacity, the fill rate of a builder's mount written at
// a known rate and when it will be full, Koji's own history of the
// capacity (the upstream CLI: the bot's Koji user's change), the
// clean-up's dry run and job with the bytes freed, the outage draft of the
// full /mnt/koji with its link (and the screenshot of /status then, as
// make screenshot takes it), restart all; all within tourTimeout.
func TestTour(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	shot := filepath.Join(t.TempDir(), "status.png")
	err := Tour(ctx, &out, shot)
	transcript := out.String()
	t.Logf("transcript:\n%s", transcript)
	if err != nil {
		t.Fatal(err)
	}
	inOrder := []string{
		"<alice> !koji help", "!koji help <command>",
		"<alice> !koji hosts", "alice: 10 hosts, 9 enabled, 8 ready",
		"<alice> !koji disk all", "alice: 4 builders: 1 full, 0 could not be read; full: xenbuilder3",
		"<bob> !koji capacity ppc3 8", "<kojibot> bob: denied: capacity needs membership in FAS group sysadmin-build",
		"<alice> !koji capacity ppc3 2", "<kojibot> alice: ppc3.fedora.redhat.com capacity 4 → 2 (load 1.5)",
		"*** meanwhile a build on xenbuilder1 has been writing 32 KiB/s to /mnt/build (16 MiB)",
		"<alice> !koji disk xenbuilder1",
		"*** what Koji itself shows, with the upstream CLI: koji list-history --host ppc3.fedora.redhat.com",
		"host configuration for ppc3.fedora.redhat.com altered by admin",
		"host configuration for ppc3.fedora.redhat.com altered by kojibot [still active]",
		"<alice> !koji cleanup xenbuilder2 --dry-run", "dry run, nothing will change for xenbuilder2: stop kojid, plague-builder; delete 7 entries older than 7d (11.0 MiB)",
		"<alice> !koji cleanup xenbuilder2", "alice: confirm: clean-up plan for xenbuilder2",
		"<alice> !koji confirm ", "alice: job 1 started: cleanup xenbuilder2",
		"alice: xenbuilder2: stopped kojid, plague-builder", "alice: xenbuilder2: removed 7 entries, freed 11.0 MiB (",
		"alice: xenbuilder2: started kojid, plague-builder again", "alice: job 1 (cleanup xenbuilder2) done in ",
		"*** /mnt/koji on koji-hub fills up", "<kojibot> ALERT shared mount /mnt/koji on koji-hub ",
		"<alice> !koji restart all", "alice: confirm: restart httpd then kojira on koji-hub",
		"alice: 3 builders checked in since the hub restart; 1 did not and will be restarted: xenbuilder4",
		"alice: restarted the services of 1 builder, all active again: xenbuilder4",
		"alice: job 2 (restart all) done in ",
	}
	at := 0
	for _, want := range inOrder {
		i := strings.Index(transcript[at:], want)
		if i < 0 {
			t.Fatalf("transcript lacks %q after byte %d", want, at)
		}
		at += i + len(want)
	}
	for _, want := range []string{
		"<kojibot> ALERT disk: xenbuilder3 /var/lib/mock 93% full (threshold 90%)",
		"<kojibot> ALERT stale builder: xenbuilder4.fedora.redhat.com last checked in 1h ago",
	} {
		if !strings.Contains(transcript, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	// The prediction: the rate said is the build's (within 20%), and the
	// time until full follows from it.
	rates := regexp.MustCompile(`(?m)<kojibot> alice: xenbuilder1: .*/mnt/build ([0-9.]+)% \([^)]*\), \+([0-9.]+)%/h, full in about ([0-9]+) min`).FindAllStringSubmatch(transcript, -1)
	if len(rates) == 0 {
		t.Errorf("no prediction for xenbuilder1's /mnt/build in the transcript")
	} else {
		m := rates[len(rates)-1]
		pct, _ := strconv.ParseFloat(m[1], 64)
		rate, _ := strconv.ParseFloat(m[2], 64)
		mins, _ := strconv.Atoi(m[3])
		truth := float64(fillPerSecond) * 3600 / fillingMountSize * 100
		if rate < 0.8*truth || rate > 1.2*truth {
			t.Errorf("xenbuilder1's /mnt/build fills at %+.1f%%/h, said %+.1f%%/h", truth, rate)
		}
		if want := (100 - pct) / rate * 60; math.Abs(float64(mins)-want) > 0.25*want+1 {
			t.Errorf("full in about %d min at %.1f%% and %+.1f%%/h, want about %.0f", mins, pct, rate, want)
		}
	}
	if !regexp.MustCompile(`outage draft o[0-9]+: http://127\.0\.0\.1:[0-9]+/drafts/[a-z0-9]+ — escalate: kevin, nirik`).MatchString(transcript) {
		t.Errorf("no outage draft link in the shared mount's alert")
	}
	if strings.Contains(transcript, " 1 builders") || strings.Contains(transcript, " 1 entries") {
		t.Errorf("wrong plural in the transcript")
	}
	// The screenshot of /status (make screenshot), at the window's width.
	if !strings.Contains(transcript, "(screenshot: "+shot+")\n") {
		t.Errorf("the transcript does not name the screenshot %s", shot)
	}
	if f, err := os.Open(shot); err != nil {
		t.Errorf("screenshot: %v", err)
	} else {
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != 900 || cfg.Height < 700 {
			t.Errorf("screenshot %s: %+v %v, want a PNG 900 wide and 700 high at least", shot, cfg, err)
		}
	}
	m := regexp.MustCompile(`(?m)^--- the tour took ([0-9.]+s)`).FindStringSubmatch(transcript)
	if m == nil {
		t.Fatal("no run time at the end of the transcript")
	}
	if d, err := time.ParseDuration(m[1]); err != nil || d > tourTimeout {
		t.Errorf("the tour took %s, want at most %s", m[1], tourTimeout)
	}
	for _, line := range strings.Split(strings.TrimSpace(transcript), "\n") {
		if !regexp.MustCompile(`^([0-9]{2}:[0-9]{2}:[0-9]{2} |--- )`).MatchString(line) {
			t.Errorf("transcript line without a timestamp: %q", line)
		}
	}
}
