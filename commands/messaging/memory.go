package messaging

import (
	"context"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/commands/state"
)

// MemoryOutbox is an Outbox in memory, for a bot without a state store:
// it keeps the same order and bound, but not across restarts.
type MemoryOutbox struct {
	mu   sync.Mutex
	next int64
	q    []state.Queued
}

// Enqueue implements Outbox.
func (m *MemoryOutbox) Enqueue(_ context.Context, payload string, queued time.Time, bound int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	m.q = append(m.q, state.Queued{ID: m.next, Payload: payload, Queued: queued})
	dropped := 0
	if bound > 0 && len(m.q) > bound {
		dropped = len(m.q) - bound
		m.q = append([]state.Queued(nil), m.q[dropped:]...)
	}
	return dropped, nil
}

// Outbox implements Outbox.
func (m *MemoryOutbox) Outbox(_ context.Context, limit int) ([]state.Queued, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := min(limit, len(m.q))
	return append([]state.Queued(nil), m.q[:n]...), nil
}

// Sent implements Outbox.
func (m *MemoryOutbox) Sent(_ context.Context, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, q := range m.q {
		if q.ID == id {
			m.q = append(m.q[:i], m.q[i+1:]...)
			break
		}
	}
	return nil
}
