package relay_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liverelay/liverelay/internal/merge"
	"github.com/liverelay/liverelay/internal/relay"
)

// fakeFence drops operations older than what it was told was published, and holds
// the acks of each record until release is called.
type fakeFence struct {
	mu      sync.Mutex
	revs    map[string]int64
	pending []func()
	checks  int
}

func (f *fakeFence) Check(_ context.Context, u *merge.Update) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	dropped := 0
	for _, post := range u.Posts() {
		if rev := u.Revision(post); rev != 0 && rev < f.revs[u.Channel+"/"+post] {
			u.Drop(post)
			dropped++
		}
	}
	return dropped, nil
}

func (f *fakeFence) Record(u *merge.Update, done func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, post := range u.Posts() {
		f.revs[u.Channel+"/"+post] = max(f.revs[u.Channel+"/"+post], u.Revision(post))
	}
	f.pending = append(f.pending, done)
}

func (f *fakeFence) release() {
	f.mu.Lock()
	pending := f.pending
	f.pending = nil
	f.mu.Unlock()
	for _, done := range pending {
		done()
	}
}

// With a fence, sources are acked only once the fence stored what was published, the
// channel does not wait for that, and an update older than what readers have is not
// published at all (its sources are still acked).
func TestFenceHoldsAcksAndDropsStaleUpdates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{}
		cfg := baseConfig()
		cfg.Window = 10 * time.Millisecond
		f := &fakeFence{revs: map[string]int64{"page/a": 50}}
		h := startRelay(t, cfg, p, nil, func(r *relay.Relay) { r.SetFence(f) })

		stale := h.submit(withRevision(renders("page", "a", "old"), 40))
		advance(time.Second)
		if n := len(p.Accepted("page")); n != 0 {
			t.Fatalf("a render older than what readers have was published (%d messages)", n)
		}
		checkAckedOnce(t, stale...)

		fresh := h.submit(withRevision(renders("page", "a", "new"), 60))
		advance(time.Second)
		if n := len(p.Accepted("page")); n != 1 {
			t.Fatalf("%d messages published, want 1", n)
		}
		checkNotAcked(t, fresh...)
		// The channel is free before the fence stored the record.
		next := h.submit(withRevision(renders("page", "b", "b"), 70))
		advance(time.Second)
		if n := len(p.Accepted("page")); n != 2 {
			t.Fatalf("%d messages published, want 2: the channel waited for the fence", n)
		}
		f.release()
		synctest.Wait()
		checkAckedOnce(t, fresh...)
		checkAckedOnce(t, next...)
	})
}

// Published messages whose acks wait for a slow fence store are kept in progress, so
// JetStream does not deliver them again meanwhile.
func TestMessagesWaitingForTheFenceAreKeptAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{}
		cfg := baseConfig()
		cfg.Window = 10 * time.Millisecond
		cfg.KeepAlive = 10 * time.Second
		f := &fakeFence{revs: map[string]int64{}}
		h := startRelay(t, cfg, p, nil, func(r *relay.Relay) { r.SetFence(f) })
		srcs := h.submit(withRevision(renders("page", "a", "x"), 10))
		advance(time.Minute)
		checkNotAcked(t, srcs...)
		if n := len(srcs[0].ProgressAt()); n < 4 {
			t.Fatalf("%d in-progress marks in a minute of waiting for the fence; want one per keep-alive (≥ 4)", n)
		}
		f.release()
		synctest.Wait()
		checkAckedOnce(t, srcs...)
	})
}
