package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/relay"
)

// TestShutdownFlushesHeldUpdates: on cancel, Run publishes what it holds, then returns.
func TestShutdownFlushesHeldUpdates(t *testing.T) {
	tests := []struct {
		name    string
		window  time.Duration
		publish func(context.Context, int, []publish.Message) error
		run     func(h *harness) []*fakeSource
		want    map[string][]string
	}{
		{"updates waiting in the window", time.Hour, nil,
			func(h *harness) []*fakeSource {
				return h.submit(renders("page", "a", "1"), renders("other", "b", "1"), renders("page", "a", "2"))
			},
			map[string][]string{"page": {"a=2 |"}, "other": {"b=1 |"}}},
		{"an update queued behind one in flight", 0,
			func(ctx context.Context, n int, _ []publish.Message) error {
				if n == 0 {
					select {
					case <-time.After(2 * time.Second):
					case <-ctx.Done():
						return &publish.Error{Provider: "fake", Err: ctx.Err()}
					}
				}
				return nil
			},
			func(h *harness) []*fakeSource {
				srcs := h.submit(renders("page", "a", "1"))
				advance(100 * time.Millisecond)
				return append(srcs, h.submit(renders("page", "a", "2"))...)
			},
			map[string][]string{"page": {"a=1 |", "a=2 |"}}},
		{"an update waiting a retry due before the deadline", 0, failWith("page", 1, err500()),
			func(h *harness) []*fakeSource { return h.submit(renders("page", "a", "1")) },
			map[string][]string{"page": {"a=1 |"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, p := startWindowed(t, tt.window, tt.publish)
				srcs := tt.run(h)
				synctest.Wait()

				stopAt := time.Now()
				if err := h.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				if took := time.Since(stopAt); took > baseConfig().ShutdownTimeout {
					t.Errorf("Run took %v to return, more than ShutdownTimeout %v", took, baseConfig().ShutdownTimeout)
				}
				for ch, want := range tt.want {
					if got := describeAll(t, p.Accepted(ch)); !slices.Equal(got, want) {
						t.Errorf("channel %s published %q, want %q", ch, got, want)
					}
				}
				if n := len(h.dead.Letters()); n != 0 {
					t.Errorf("%d letters, want none", n)
				}
				checkAckedOnce(t, srcs...)
			})
		})
	}
}

// TestSubmitAfterStopIsRefused: once Run stopped taking events, Submit must say so;
// a nil error means the relay took the event and will ack it.
func TestSubmitAfterStopIsRefused(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
	}{
		{"live context", context.Background()},
		{"cancelled context", cancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := startRelay(t, baseConfig(), nil, nil)
				if err := h.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				for i := range 50 {
					in, _ := h.input(renders("page", "a", "1"))
					err := h.relay.Submit(tt.ctx, in)
					if !errors.Is(err, relay.ErrStopped) && !errors.Is(err, context.Canceled) {
						t.Fatalf("Submit #%d after Run returned: %v, want ErrStopped: the caller believes the relay "+
							"took an event that it will never publish or ack", i+1, err)
					}
				}
			})
		})
	}
}

// TestEventsTakenBeforeStopAreFlushed: an event Submit accepted before the stop is held
// by the relay, and flushed like the others; Submit refuses the rest with ErrStopped.
func TestEventsTakenBeforeStopAreFlushed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		p := &fakeProvider{check: func(ch string) error {
			if ch == "gate" {
				<-gate // holds the loop while the next events are submitted
			}
			return nil
		}}
		cfg := baseConfig()
		cfg.Window = 0
		h := startRelay(t, cfg, p, nil)
		h.submit(renders("gate", "g", "1"))
		synctest.Wait()

		type submitted struct {
			src *fakeSource
			err error
		}
		results := make(chan submitted, 50)
		for i := range 50 {
			in, src := h.input(renders(fmt.Sprintf("ch-%02d", i), "p", "1"))
			go func() { results <- submitted{src, h.relay.Submit(context.Background(), in)} }()
		}
		synctest.Wait() // every Submit returned or waits for the loop
		h.cancel()
		close(gate)
		if err := h.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		var taken int
		var lost []uint64
		for range 50 {
			r := <-results
			switch {
			case r.err == nil:
				taken++
				if r.src.acks.Load() != 1 {
					lost = append(lost, r.src.seq)
				}
			case !errors.Is(r.err, relay.ErrStopped):
				t.Errorf("Submit(seq %d) = %v, want nil or ErrStopped", r.src.seq, r.err)
			}
		}
		if len(lost) > 0 {
			slices.Sort(lost)
			t.Errorf("%d of the %d events Submit took before the stop were neither published nor acked (seqs %v); "+
				"they stay in the relay's input queue until JetStream redelivers them after AckWait", len(lost), taken, lost)
		}
	})
}

// TestShutdownGivesUpAtTimeout: when the provider cannot take the held updates, Run
// returns by ShutdownTimeout and leaves every message unacked for redelivery.
func TestShutdownGivesUpAtTimeout(t *testing.T) {
	tests := []struct {
		name    string
		window  time.Duration
		publish func(context.Context, int, []publish.Message) error
	}{
		{"the provider hangs until cancelled", 0,
			func(ctx context.Context, _ int, _ []publish.Message) error { return blockUntilDone(ctx) }},
		{"the provider hangs, then returns the bare context error", 0,
			func(ctx context.Context, _ int, _ []publish.Message) error { <-ctx.Done(); return ctx.Err() }},
		{"the provider fails with 500 during the flush", time.Hour,
			func(context.Context, int, []publish.Message) error { return err500() }},
		{"the next retry is due after the deadline", 0,
			func(context.Context, int, []publish.Message) error {
				return &publish.Error{Provider: "fake", Status: 429, RetryAfter: time.Minute}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, p := startWindowed(t, tt.window, tt.publish)
				srcs := h.submit(renders("page", "a", "1"), renders("other", "b", "1"))
				advance(time.Second)
				srcs = append(srcs, h.submit(renders("page", "a", "2"))...)
				synctest.Wait()

				stopAt := time.Now()
				if err := h.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				if took := time.Since(stopAt); took > baseConfig().ShutdownTimeout+100*time.Millisecond {
					t.Errorf("Run took %v to return, want at most ShutdownTimeout %v", took, baseConfig().ShutdownTimeout)
				}
				checkNotAcked(t, srcs...)
				if letters := h.dead.Letters(); len(letters) != 0 {
					t.Errorf("letters %+v, want none: the messages are left for redelivery", letters)
				}
				for _, ch := range []string{"page", "other"} {
					if got := p.Accepted(ch); len(got) != 0 {
						t.Errorf("channel %s: provider accepted %q", ch, got)
					}
				}
			})
		})
	}
}
