package providertest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// Recorder keeps what a fake accepted, in the order it was accepted, and lets tests
// wait for it. All its methods are safe for concurrent use.
type Recorder[T any] struct {
	fake, noun string // name what is recorded in errors: "pusher", "events"

	mu      sync.Mutex
	items   []T           // append-only, so a prefix can be shared without copying
	changed chan struct{} // closed, then replaced, when items are added
}

// NewRecorder returns an empty recorder. Its errors name the fake and what it keeps:
// with "pusher" and "events", Wait fails with "pushertest: condition not met with 2
// events: …" and WaitN with "waiting for 3 pusher events: …".
func NewRecorder[T any](fake, noun string) *Recorder[T] {
	return &Recorder[T]{fake: fake, noun: noun, changed: make(chan struct{})}
}

// Add records items and wakes the waiters; adding nothing wakes nobody.
func (r *Recorder[T]) Add(items ...T) {
	if len(items) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, items...)
	close(r.changed)
	r.changed = make(chan struct{})
}

// All returns a copy of the recorded items.
func (r *Recorder[T]) All() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.items)
}

// Wait blocks until cond holds for the recorded items, or ctx ends. cond must not
// modify the slice, which is shared.
func (r *Recorder[T]) Wait(ctx context.Context, cond func([]T) bool) error {
	for {
		r.mu.Lock()
		items := r.items[:len(r.items):len(r.items)]
		changed := r.changed
		r.mu.Unlock()
		if cond(items) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%stest: condition not met with %d %s: %w", r.fake, len(items), r.noun, context.Cause(ctx))
		}
	}
}

// WaitN waits up to timeout for at least n recorded items and returns them all; it
// fails t when they do not come. Call it from the test's goroutine.
func (r *Recorder[T]) WaitN(t testing.TB, n int, timeout time.Duration) []T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.Wait(ctx, func(items []T) bool { return len(items) >= n }); err != nil {
		t.Fatalf("waiting for %d %s %s: %v", n, r.fake, r.noun, err)
	}
	return r.All()
}
