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
	mu         sync.Mutex
	revs       map[string]int64
	partitions []int
	checks     int
}

func (f *fakeFence) Check(_ context.Context, _ int, _ uint64, u *merge.Update) (int, error) {
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

func (f *fakeFence) Record(partition int, u *merge.Update) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, post := range u.Posts() {
		f.revs[u.Channel+"/"+post] = max(f.revs[u.Channel+"/"+post], u.Revision(post))
	}
	f.partitions = append(f.partitions, partition)
}

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
		checkAckedOnce(t, fresh...)
		if got := f.revision("page/a"); got != 60 {
			t.Fatalf("fence holds revision %d of page/a, want 60", got)
		}
		if len(f.partitions) != 1 || f.partitions[0] != 0 {
			t.Fatalf("recorded under partitions %v, want [0] (the harness's partition)", f.partitions)
		}
	})
}
