package relay_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/retry"
)

// startBreaking runs a relay that publishes to p with a 10 ms window, concurrency
// calls at a time and retries by policy: the breaker's tests' set-up.
func startBreaking(t *testing.T, p *fakeProvider, concurrency int, policy retry.Policy) *harness {
	t.Helper()
	cfg := baseConfig()
	cfg.Window = 10 * time.Millisecond
	cfg.Concurrency = concurrency
	cfg.Retry = policy
	return startRelay(t, cfg, p, nil)
}

// A provider down for everyone is not hammered: with 200 channels failing at once, the
// breaker holds every call after five failures and lets one probe through per
// cool-down; when the provider recovers, every channel is delivered, none dead-lettered.
func TestBreakerBoundsRequestsDuringAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		down.Store(true)
		var duringOutage atomic.Int64
		p := &fakeProvider{publish: func(ctx context.Context, n int, msgs []publish.Message) error {
			if down.Load() {
				duringOutage.Add(1)
				return err500()
			}
			return nil
		}}
		h := startBreaking(t, p, 8, retry.Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second, MaxElapsed: time.Hour})
		if open := h.gauge("liverelay_provider_breaker_open"); open != 0 {
			t.Fatalf("breaker gauge %v before any call, want 0", open)
		}
		const channels = 200
		for i := 0; i < channels; i++ {
			h.submit(renders(fmt.Sprintf("ch-%03d", i), "p", "<p>v1</p>"))
		}
		const outage = 60 * time.Second
		advance(outage)
		requests := duringOutage.Load()
		// Without the breaker each of the 200 channels would retry about 30 times a
		// minute at a 2 s cap: ~6,000 requests. With it: the calls before it opened,
		// then about one probe per cool-down (growing to 2 s).
		if requests > 60 {
			t.Fatalf("%d provider requests during a %v outage of 200 channels; want ≤ 60", requests, outage)
		}
		if open := h.gauge("liverelay_provider_breaker_open"); open != 1 {
			t.Errorf("breaker gauge %v during the outage, want 1", open)
		}
		down.Store(false)
		advance(10 * time.Second)
		if open := h.gauge("liverelay_provider_breaker_open"); open != 0 {
			t.Errorf("breaker gauge %v after the recovery, want 0", open)
		}
		for i := 0; i < channels; i++ {
			ch := fmt.Sprintf("ch-%03d", i)
			if got := len(p.Accepted(ch)); got != 1 {
				t.Fatalf("%s: %d accepted messages, want 1", ch, got)
			}
		}
		checkAckedOnce(t, h.sources...)
		if n := len(h.dead.Letters()); n != 0 {
			t.Fatalf("%d letters: the outage used up retry attempts", n)
		}
		t.Logf("%d requests during a %v outage of %d channels", requests, outage, channels)
	})
}

// One channel failing on its own (a permanent-looking 5xx for it alone) does not stop
// the others: calls that succeed keep the breaker closed.
func TestBreakerIgnoresOneFailingChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{publish: func(ctx context.Context, n int, msgs []publish.Message) error {
			for _, m := range msgs {
				if m.Channel == "bad" {
					return err500()
				}
			}
			return nil
		}}
		h := startBreaking(t, p, 1, retry.Policy{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond, MaxElapsed: time.Hour})
		h.submit(renders("bad", "p", "x"))
		for i := 0; i < 50; i++ {
			h.submit(renders(fmt.Sprintf("good-%d", i), "p", "x"))
			advance(100 * time.Millisecond)
		}
		for i := 0; i < 50; i++ {
			if got := len(p.Accepted(fmt.Sprintf("good-%d", i))); got != 1 {
				t.Fatalf("good-%d: %d accepted, want 1", i, got)
			}
		}
	})
}

// Shutdown while the breaker holds calls for an hour (a long Retry-After) returns by
// the shutdown timeout, leaving the held messages unacked.
func TestShutdownDoesNotWaitForTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{publish: func(ctx context.Context, n int, msgs []publish.Message) error {
			return &publish.Error{Provider: "fake", Status: 429, RetryAfter: time.Hour}
		}}
		cfg := baseConfig()
		h := startBreaking(t, p, cfg.Concurrency, retry.Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second, MaxElapsed: 2 * time.Hour})
		var srcs []*fakeSource
		for i := 0; i < 20; i++ {
			srcs = append(srcs, h.submit(renders(fmt.Sprintf("ch-%d", i), "p", "x"))...)
		}
		advance(10 * time.Second)
		start := time.Now()
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > cfg.ShutdownTimeout+time.Second {
			t.Fatalf("Run returned %v after stop; the shutdown timeout is %v", took, cfg.ShutdownTimeout)
		}
		checkNotAcked(t, srcs...)
	})
}
