package fleet

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

// Each calls fn for every host, at most ssh.parallel at a time, and
// returns every host's outcome (nil for success). A failure, a hang until
// fn's own deadline, or a panic on one host never stops the others. When
// ctx ends, hosts not yet started get the context's error. Duplicate names
// run once.
func (f *Fleet) Each(ctx context.Context, hosts []string, fn func(ctx context.Context, host string) error) map[string]error {
	out := make(map[string]error, len(hosts))
	var mu sync.Mutex
	set := func(h string, err error) {
		mu.Lock()
		out[h] = err
		mu.Unlock()
	}
	sem := make(chan struct{}, f.cfg.Parallel)
	var wg sync.WaitGroup
	seen := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		if seen[h] {
			continue
		}
		seen[h] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				set(h, ctxError(ctx, f.label(h), "not started", 0))
				return
			}
			defer func() { <-sem }()
			set(h, f.call(ctx, h, fn))
		}()
	}
	wg.Wait()
	return out
}

// call runs fn for host, turning a panic into an error.
func (f *Fleet) call(ctx context.Context, host string, fn func(ctx context.Context, host string) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f.log.Error("panic in fleet.Each", "host", host, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("fleet: %s: panic: %v", f.label(host), r)
		}
	}()
	return fn(ctx, host)
}
