package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/relay"
)

// submitTo hands evs to the relay as messages of one partition, under pin.
func (h *harness) submitTo(partition int, pin string, evs ...event.Event) []*fakeSource {
	h.t.Helper()
	var out []*fakeSource
	for _, ev := range evs {
		in, src := h.input(ev)
		in.Partition, in.Epoch = partition, pin
		if err := h.relay.Submit(context.Background(), in); err != nil {
			h.t.Fatalf("Submit(seq %d): %v", in.Seq, err)
		}
		out = append(out, src)
	}
	return out
}

func checkNaked(t *testing.T, ops *opLog, srcs ...*fakeSource) {
	t.Helper()
	var want, got []string
	for _, s := range srcs {
		if n := s.naks.Load(); n != 1 {
			t.Errorf("source seq %d handed back %d times, want once", s.seq, n)
		}
		want = append(want, "nak "+itoa(s.seq))
	}
	for _, op := range ops.all() {
		if len(op) > 4 && op[:4] == "nak " {
			got = append(got, op)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("handed back %v, want %v (oldest first)", got, want)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// Release publishes what a partition holds at once, without waiting for the window,
// acks it, and leaves other partitions alone.
func TestReleasePublishesAPartitionAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startRelay(t, baseConfig(), nil, nil) // 1 s window
		mine := h.submitTo(0, "pin", renders("a", "p1", "1"), renders("b", "p2", "1"))
		other := h.submitTo(1, "pin", renders("c", "p3", "1"))
		start := time.Now()
		if n, err := h.relay.Release(context.Background(), 0); err != nil || n != 0 {
			t.Fatalf("Release = %d handed back, %v; want 0, nil", n, err)
		}
		if took := time.Since(start); took >= time.Second {
			t.Fatalf("release took %v: it waited for the window", took)
		}
		checkAckedOnce(t, mine...)
		checkNotAcked(t, other...)
		advance(2 * time.Second)
		checkAckedOnce(t, other...)
	})
}

// A publish that fails during a hand-over is not retried here: its messages go back
// to JetStream oldest first, for the next owner to publish before anything newer.
func TestReleaseHandsFailuresBackOldestFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{publish: failWith("a", 1000, err500())}
		h := startRelay(t, baseConfig(), p, nil)
		srcs := h.submitTo(0, "pin", renders("a", "p1", "1"), renders("a", "p2", "1"), removals("a", "p0"))
		if n, err := h.relay.Release(context.Background(), 0); err != nil || n != 3 {
			t.Fatalf("Release = %d handed back, %v; want 3, nil", n, err)
		}
		checkNotAcked(t, srcs...)
		checkNaked(t, h.ops, srcs...)
		calls := len(p.Calls())
		advance(time.Minute)
		if n := len(p.Calls()); n != calls {
			t.Fatalf("the relay kept retrying a handed-back update: %d calls, then %d", calls, n)
		}
	})
}

// When the hand-over runs out of time (the provider holds the call), what is held
// and not with the provider is handed back, and Release still waits for the call.
func TestReleaseGivesUpWhenItsTimeIsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		slow := true
		p := &fakeProvider{publish: func(ctx context.Context, n int, _ []publish.Message) error {
			mu.Lock()
			s := slow
			mu.Unlock()
			if s {
				time.Sleep(10 * time.Second)
				return err500()
			}
			return nil
		}}
		cfg := baseConfig()
		cfg.Concurrency = 1
		h := startRelay(t, cfg, p, nil)
		first := h.submitTo(0, "pin", renders("a", "p1", "1"))
		advance(1100 * time.Millisecond) // a's job is with the (slow) provider
		later := h.submitTo(0, "pin", renders("a", "p2", "1"), renders("b", "p3", "1"))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := h.relay.Release(ctx, 0)
		if !errors.Is(err, context.DeadlineExceeded) || n != 3 {
			t.Fatalf("Release = %d handed back, %v; want 3 and the deadline", n, err)
		}
		checkNotAcked(t, append(first, later...)...)
		for _, s := range append(first, later...) {
			if s.naks.Load() != 1 {
				t.Errorf("seq %d handed back %d times, want once", s.seq, s.naks.Load())
			}
		}
	})
}

// Drop forgets a partition's updates: nothing published, acked or handed back; the
// channel starts afresh with the next event.
func TestDropForgetsAPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{}
		h := startRelay(t, baseConfig(), p, nil)
		old := h.submitTo(0, "old-pin", renders("a", "p1", "1"))
		if err := h.relay.Drop(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		advance(2 * time.Second)
		if n := len(p.Calls()); n != 0 {
			t.Fatalf("%d publish calls after the partition was dropped", n)
		}
		checkNotAcked(t, old...)
		if old[0].naks.Load() != 0 {
			t.Fatal("a dropped message was handed back: it belongs to the new owner")
		}
		fresh := h.submitTo(0, "new-pin", renders("a", "p2", "1"))
		advance(2 * time.Second)
		checkAckedOnce(t, fresh...)
		if got := describeAll(t, p.Accepted("a")); !slices.Equal(got, []string{"p2=1 |"}) {
			t.Fatalf("published %v, want only the event after the drop", got)
		}
	})
}

// owner is a fake relay.Owner.
type owner struct {
	mu   sync.Mutex
	lost map[int]bool
}

func (o *owner) Owns(p int, _ string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lost[p] {
		return errors.New("not sure this worker holds the partition")
	}
	return nil
}

func (o *owner) set(p int, lost bool) {
	o.mu.Lock()
	o.lost[p] = lost
	o.mu.Unlock()
}

// A job whose partition this worker may have lost is not published until it is
// sure again; the provider is not blamed for it.
func TestJobsWaitWhileOwnershipIsInDoubt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &owner{lost: map[int]bool{0: true}}
		p := &fakeProvider{}
		h := startRelay(t, baseConfig(), p, nil, func(d *relay.Deps) { d.Owner = o })
		held := h.submitTo(0, "pin", renders("a", "p1", "1"))
		free := h.submitTo(1, "pin", renders("b", "p2", "1"))
		advance(5 * time.Second)
		checkNotAcked(t, held...)
		checkAckedOnce(t, free...)
		for _, c := range p.Calls() {
			if c.has("a") {
				t.Fatal("published a job of a partition this worker may have lost")
			}
		}
		o.set(0, false)
		advance(time.Minute)
		checkAckedOnce(t, held...)
	})
}

// A provider call made during a hand-over does not outlast it: past the hand-over's
// deadline the call is cut and its messages handed back, so that the next owner,
// pinned soon after, is not overtaken by a late publish.
func TestReleaseBoundsCallsMadeDuringIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{publish: func(ctx context.Context, _ int, _ []publish.Message) error { return blockUntilDone(ctx) }}
		h := startRelay(t, baseConfig(), p, nil)
		srcs := h.submitTo(0, "pin", renders("a", "p1", "1"))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		n, _ := h.relay.Release(ctx, 0)
		if took := time.Since(start); took > 2*time.Second+100*time.Millisecond {
			t.Fatalf("the hand-over took %v; its deadline was 2s", took)
		}
		if n != 1 {
			t.Fatalf("%d messages handed back, want 1", n)
		}
		checkNotAcked(t, srcs...)
	})
}

// A job whose partition is another worker's now is dropped: not published, not
// acked, not retried.
func TestJobOfAPartitionGoneIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := goneOwner{}
		p := &fakeProvider{}
		h := startRelay(t, baseConfig(), p, nil, func(d *relay.Deps) { d.Owner = o })
		srcs := h.submitTo(0, "old", renders("a", "p1", "1"))
		advance(time.Minute)
		if n := len(p.Calls()); n != 0 {
			t.Fatalf("%d publish calls for a partition that is gone", n)
		}
		checkNotAcked(t, srcs...)
		if srcs[0].naks.Load() != 0 || len(h.dead.Letters()) != 0 {
			t.Fatal("a job of a partition that is gone was handed back or dead-lettered")
		}
	})
}

type goneOwner struct{}

func (goneOwner) Owns(int, string) error {
	return fmt.Errorf("%w: partition 0 is pinned to another worker", relay.ErrPartitionGone)
}

// A message delivered again after a newer one of its channel was taken (a consumer
// leader that died before replicating its last deliveries) is acked, and its older
// content is not published after the newer one.
func TestRepeatedOlderMessageIsAckedNotMerged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{}
		h := startRelay(t, baseConfig(), p, nil)
		older, _ := h.input(renders("a", "p1", "old"))
		newer, _ := h.input(renders("a", "p2", "new"))
		h.submitInputs(older, newer)
		advance(2 * time.Second)
		// The older message comes again, alone.
		again, src := h.input(renders("a", "p1", "old"))
		again.Seq = older.Seq
		h.submitInputs(again)
		advance(2 * time.Second)
		if got := describeAll(t, p.Accepted("a")); !slices.Equal(got, []string{"p1=old p2=new |"}) {
			t.Fatalf("published %v; the repeat must not put p1 above p2 again", got)
		}
		checkAckedOnce(t, src)
	})
}

// An older message never taken before (a late redelivery after a crash) is merged as
// usual: only a message taken before is a repeat, and dropping anything else would
// lose it.
func TestLateOlderMessageIsNotARepeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{}
		h := startRelay(t, baseConfig(), p, nil)
		early, _ := h.input(renders("a", "p1", "1"))
		late, src := h.input(renders("a", "p2", "1"))
		// The later message arrives first.
		h.submitInputs(late, early)
		advance(2 * time.Second)
		got := describeAll(t, p.Accepted("a"))
		if len(got) != 1 || !strings.Contains(got[0], "p1=1") || !strings.Contains(got[0], "p2=1") {
			t.Fatalf("published %v; both posts must reach readers", got)
		}
		checkAckedOnce(t, src)
	})
}
