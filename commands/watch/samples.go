package watch

import (
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/commands/watch/trend"
)

// Samples keeps the readings of the mounts the watcher checks, by check
// name (see alerting.CheckName), for the fill predictions.
type Samples interface {
	// Append records one reading of the mount checked under check.
	Append(check string, s trend.Sample)
	// Recent returns check's readings taken at or after since, oldest
	// first.
	Recent(check string, since time.Time) []trend.Sample
}

// SampleKeep is how long the watcher's samples are kept.
const SampleKeep = 7 * 24 * time.Hour

// PredictWindow is how far back the watcher fits a mount's trend.
const PredictWindow = 24 * time.Hour

// MemorySamples is a Samples in memory, bounded: per check, it keeps the
// readings of the last Keep and at most Max of them. Its zero value is not
// usable: use NewMemorySamples.
type MemorySamples struct {
	keep time.Duration
	max  int

	mu sync.Mutex
	by map[string][]trend.Sample
}

// NewMemorySamples returns a MemorySamples that keeps, per check, the
// readings of the last keep, and at most keep/interval+1 of them (at least
// two).
func NewMemorySamples(keep, interval time.Duration) *MemorySamples {
	n := 2
	if interval > 0 {
		n = max(n, int(keep/interval)+1)
	}
	return &MemorySamples{keep: keep, max: n, by: map[string][]trend.Sample{}}
}

// Append implements Samples.
func (m *MemorySamples) Append(check string, s trend.Sample) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := append(m.by[check], s)
	cut := 0
	for cut < len(v) && (v[cut].At.Before(s.At.Add(-m.keep)) || len(v)-cut > m.max) {
		cut++
	}
	if cut > 0 {
		v = append([]trend.Sample(nil), v[cut:]...)
	}
	m.by[check] = v
}

// Recent implements Samples.
func (m *MemorySamples) Recent(check string, since time.Time) []trend.Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []trend.Sample
	for _, s := range m.by[check] {
		if !s.At.Before(since) {
			out = append(out, s)
		}
	}
	return out
}

// Len returns how many readings of check are kept.
func (m *MemorySamples) Len(check string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.by[check])
}
