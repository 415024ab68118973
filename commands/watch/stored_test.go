package watch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/commands/watch/trend"
)

// TestStoredSamplesOutliveTheProcess: the readings one watcher took are
// what the next one (a restarted bot, a replica taking over) predicts
// from at once, with no new reading.
func TestStoredSamplesOutliveTheProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := state.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	first := NewStoredSamples(st, SampleKeep, time.Minute, nil)
	// 2% an hour, read every 10 minutes for 3 hours.
	for i := range 19 {
		first.Append("disk /mnt/koji", trend.Sample{At: now.Add(time.Duration(i-18) * 10 * time.Minute), Percent: 60 + float64(i)/3, Size: 1 << 40})
	}
	st.Close()

	st, err = state.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	next := NewStoredSamples(st, SampleKeep, time.Minute, nil)
	got := next.Recent("disk /mnt/koji", now.Add(-PredictWindow))
	if len(got) != 19 {
		t.Fatalf("the next process sees %d readings, want 19", len(got))
	}
	p := trend.Estimate(got)
	if !p.OK || p.PercentPerHour < 1.99 || p.PercentPerHour > 2.01 {
		t.Fatalf("prediction from the kept readings: %+v, want +2%%/h", p)
	}
	// A new reading goes after them, not before, and is kept too.
	next.Append("disk /mnt/koji", trend.Sample{At: now.Add(10 * time.Minute), Percent: 66.4})
	if kept, _ := st.Samples(ctx, "disk /mnt/koji", time.Time{}); len(kept) != 20 {
		t.Fatalf("the store keeps %d readings, want 20", len(kept))
	}
}

// brokenSampleStore fails every read and write.
type brokenSampleStore struct{}

func (brokenSampleStore) AddSample(context.Context, string, state.Sample, time.Time) error {
	return errors.New("store away")
}

func (brokenSampleStore) Samples(context.Context, string, time.Time) ([]state.Sample, error) {
	return nil, errors.New("store away")
}

// TestStoredSamplesStoreAway: a store that fails costs only the
// persistence: the readings of this process still predict.
func TestStoredSamplesStoreAway(t *testing.T) {
	s := NewStoredSamples(brokenSampleStore{}, SampleKeep, time.Minute, nil)
	now := time.Now()
	for i := range 5 {
		s.Append("disk /mnt/koji", trend.Sample{At: now.Add(time.Duration(i) * time.Minute), Percent: 50 + float64(i)})
	}
	if got := s.Recent("disk /mnt/koji", now.Add(-time.Hour)); len(got) != 5 {
		t.Fatalf("%d readings with the store away, want 5", len(got))
	}
}
