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

// fakeFence drops operations older than what it was told was published, and notes
// the partition of each record.
type fakeFence struct {
	waits      int // checks that answer "wait" before the fence answers
	mu         sync.Mutex
	revs       map[string]int64
	partitions []int
	checks     int
}

func (f *fakeFence) Check(_ context.Context, _ int, _ uint64, u *merge.Update) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	if f.waits > 0 {
		f.waits--
		return 0, waitErr{}
	}
	dropped := 0
	for _, post := range u.Posts() {
		if rev := u.Revision(post); rev != 0 && rev < f.revs[u.Channel+"/"+post] {
			u.Drop(post)
			dropped++
		}
	}
	return dropped, nil
}

func (f *fakeFence) Record(partition int, u *merge.Update) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, post := range u.Posts() {
		f.revs[u.Channel+"/"+post] = max(f.revs[u.Channel+"/"+post], u.Revision(post))
	}
	f.partitions = append(f.partitions, partition)
}

func (f *fakeFence) Received(int, uint64) {}

func (f *fakeFence) revision(key string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.revs[key]
}

// With a fence, an update older than what readers have is not published at all (its
// sources are still acked), and a published one is recorded and acked at once.
func TestFenceDropsStaleUpdatesAndRecordsPublishedOnes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{}
		cfg := baseConfig()
		cfg.Window = 10 * time.Millisecond
		f := &fakeFence{revs: map[string]int64{"page/a": 50}}
		h := startRelay(t, cfg, p, nil, func(d *relay.Deps) { d.Fence = f })

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
		checkAckedOnce(t, fresh...)
		if got := f.revision("page/a"); got != 60 {
			t.Fatalf("fence holds revision %d of page/a, want 60", got)
		}
		if len(f.partitions) != 1 || f.partitions[0] != 0 {
			t.Fatalf("recorded under partitions %v, want [0] (the harness's partition)", f.partitions)
		}
	})
}

type waitErr struct{}

func (waitErr) Error() string { return "not settled yet" }
func (waitErr) Wait() bool    { return true }

// A fence that says "wait" (a caught-up partition whose previous owner's deliveries
// are not settled) holds the job without spending its retry attempts: with one attempt
// allowed, it is still published, not dead-lettered.
func TestFenceWaitSpendsNoAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{}
		d := &fakeDead{}
		cfg := baseConfig()
		cfg.Window = 10 * time.Millisecond
		cfg.Retry.MaxAttempts = 1
		f := &fakeFence{revs: map[string]int64{}, waits: 5}
		h := startRelay(t, cfg, p, d, func(d *relay.Deps) { d.Fence = f })
		srcs := h.submit(withRevision(renders("page", "a", "x"), 10))
		advance(10 * time.Second)
		if n := len(p.Accepted("page")); n != 1 {
			t.Fatalf("%d messages published after the fence stopped asking to wait, want 1", n)
		}
		if len(d.Letters()) != 0 {
			t.Fatalf("dead-lettered: %+v", d.Letters())
		}
		checkAckedOnce(t, srcs...)
		if f.checks != 6 {
			t.Fatalf("%d checks, want 6 (5 waits, then the one that passed)", f.checks)
		}
	})
}
