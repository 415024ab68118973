package main

import (
	"log/slog"
	"sync"
)

// lifecycle owns what a kojibot process acquires. Each acquisition pushes
// a named cleanup; stop runs them once, in reverse order, whatever path
// the process takes out: an error while building, the end of run or exec.
type lifecycle struct {
	log *slog.Logger

	mu       sync.Mutex
	cleanups []cleanup
	stopped  bool
}

// cleanup is one pushed cleanup and the name it is logged by.
type cleanup struct {
	name string
	fn   func()
}

// push registers fn, named name, to run at stop, before everything
// pushed earlier. After stop, fn runs at once.
func (l *lifecycle) push(name string, fn func()) {
	l.mu.Lock()
	if !l.stopped {
		l.cleanups = append(l.cleanups, cleanup{name, fn})
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	fn()
}

// stop runs the cleanups, the last pushed first. Only the first call does
// anything.
func (l *lifecycle) stop() {
	l.mu.Lock()
	cs := l.cleanups
	l.cleanups, l.stopped = nil, true
	l.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		if l.log != nil {
			l.log.Debug("stopping", "what", cs[i].name)
		}
		cs[i].fn()
	}
}
