package watch

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/commands/state"
	"github.com/fedora-infra/kojibot/commands/watch/trend"
)

// SampleStore is where the readings outlive the process: the state store
// (state.Backend has these methods).
type SampleStore interface {
	AddSample(ctx context.Context, check string, r state.Sample, keepFrom time.Time) error
	Samples(ctx context.Context, check string, since time.Time) ([]state.Sample, error)
}

// sampleStoreTimeout bounds one read or write of the store: a store that
// hangs must not hold up a check.
const sampleStoreTimeout = 5 * time.Second

// StoredSamples is a Samples kept in a SampleStore, so that a restarted
// bot, or a replica that takes over, predicts at once from the readings
// of the last days. It reads a check's readings from the store the first
// time that check is used, then serves them from memory, and writes each
// new one through. A store that fails costs the reading's persistence
// (logged), never the check or the prediction.
type StoredSamples struct {
	mem   *MemorySamples
	store SampleStore
	keep  time.Duration
	log   *slog.Logger

	mu     sync.Mutex
	loaded map[string]bool
}

// NewStoredSamples returns the Samples kept in store, keeping the
// readings of the last keep, read every interval (as NewMemorySamples).
func NewStoredSamples(store SampleStore, keep, interval time.Duration, log *slog.Logger) *StoredSamples {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StoredSamples{mem: NewMemorySamples(keep, interval), store: store, keep: keep, log: log, loaded: map[string]bool{}}
}

// load reads check's kept readings into memory, once.
func (s *StoredSamples) load(check string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded[check] {
		return
	}
	s.loaded[check] = true
	ctx, cancel := context.WithTimeout(context.Background(), sampleStoreTimeout)
	defer cancel()
	rs, err := s.store.Samples(ctx, check, now.Add(-s.keep))
	if err != nil {
		s.log.Warn("the kept readings could not be read: predictions start afresh", "check", check, "error", err)
		return
	}
	for _, r := range rs {
		s.mem.Append(check, trend.Sample{At: r.At, Percent: r.Percent, Size: r.Size})
	}
}

// Append implements Samples.
func (s *StoredSamples) Append(check string, r trend.Sample) {
	s.load(check, r.At)
	s.mem.Append(check, r)
	ctx, cancel := context.WithTimeout(context.Background(), sampleStoreTimeout)
	defer cancel()
	if err := s.store.AddSample(ctx, check, state.Sample{At: r.At, Percent: r.Percent, Size: r.Size}, r.At.Add(-s.keep)); err != nil {
		s.log.Warn("a reading could not be kept", "check", check, "error", err)
	}
}

// Recent implements Samples.
func (s *StoredSamples) Recent(check string, since time.Time) []trend.Sample {
	s.load(check, time.Now())
	return s.mem.Recent(check, since)
}
