package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/retry"
)

// TestChannelOrderUnderRetries: while channel a's update is retried, newer events of a
// merge into it and nothing of a overtakes it; channel b is not held up.
func TestChannelOrderUnderRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.Retry = retry.Policy{Initial: time.Second, Max: 8 * time.Second, Multiplier: 2}
		const failures = 4
		p := &fakeProvider{publish: failWith("a", failures, err500())}
		h := startRelay(t, cfg, p, nil)

		var as, bs []*fakeSource
		as = append(as, h.submit(renders("a", "p1", "v1"))...)
		advance(1200 * time.Millisecond) // a's first attempt failed at 1s
		as = append(as, h.submit(renders("a", "p1", "v2", "p2", "v1"))...)
		bs = append(bs, h.submit(renders("b", "q", "1"))...)
		advance(time.Second)
		as = append(as, h.submit(renders("a", "p1", "v3"))...)
		bs = append(bs, h.submit(renders("b", "q", "2"))...)
		advance(3 * time.Second)
		bs = append(bs, h.submit(renders("b", "q", "3"))...)
		advance(time.Minute)

		aCalls := p.CallsWith("a")
		if len(aCalls) != failures+1 {
			t.Fatalf("%d calls with channel a, want %d failures and one success", len(aCalls), failures)
		}
		for i, c := range aCalls {
			if failed := c.Err != nil; failed != (i < failures) {
				t.Fatalf("call %d of channel a: err %v, want failures first, then a success", i+1, c.Err)
			}
		}
		// Backoff: the k-th wait is in [d/2, d], d = 1s·2^(k-1), capped at 8s.
		for k := 1; k < len(aCalls); k++ {
			d := min(time.Second<<(k-1), 8*time.Second)
			if gap := aCalls[k].At.Sub(aCalls[k-1].At); gap < d/2 || gap > d {
				t.Errorf("wait before attempt %d of channel a: %v, want within [%v, %v]", k+1, gap, d/2, d)
			}
		}
		if got, want := describeAll(t, p.Accepted("a")), []string{"p1=v3 p2=v1 |"}; !slices.Equal(got, want) {
			t.Errorf("channel a published %q, want only the newest merged content %q", got, want)
		}
		aDone := aCalls[failures].At
		if got, want := describeAll(t, p.Accepted("b")), []string{"q=1 |", "q=2 |", "q=3 |"}; !slices.Equal(got, want) {
			t.Errorf("channel b published %q, want %q", got, want)
		}
		for i, at := range p.AcceptedAt("b") {
			if !at.Before(aDone) {
				t.Errorf("channel b's update %d published at %v, not during a's outage (a published at %v)", i+1, at.Sub(h.start), aDone.Sub(h.start))
			}
		}
		checkAckedOnce(t, as...)
		checkAckedOnce(t, bs...)
		checkAckedAfter(t, h.ops, "publish a", as...)
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	tests := []struct {
		name string
		err  error
		wait time.Duration
	}{
		{"429 with Retry-After 3s", &publish.Error{Provider: "fake", Status: 429, RetryAfter: 3 * time.Second}, 3 * time.Second},
		{"503 with Retry-After 2s", &publish.Error{Provider: "fake", Status: 503, RetryAfter: 2 * time.Second}, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := baseConfig()
				cfg.Retry = retry.Policy{Initial: 100 * time.Millisecond, Max: time.Second}
				p := &fakeProvider{publish: failWith("page", 1, tt.err)}
				h := startRelay(t, cfg, p, nil)
				srcs := h.submit(renders("page", "a", "1"))
				advance(time.Minute)

				calls := p.Calls()
				if len(calls) != 2 {
					t.Fatalf("%d publish calls, want a failure and a success", len(calls))
				}
				if gap := calls[1].At.Sub(calls[0].At); gap < tt.wait {
					t.Errorf("retried after %v, before the provider's Retry-After %v", gap, tt.wait)
				}
				checkAckedOnce(t, srcs...)
			})
		})
	}
}

// TestSharedCallFailureBlamesOnlyTheCulprit: a permanent failure of a call shared by
// several channels is retried channel by channel; only the culprit is dead-lettered.
func TestSharedCallFailureBlamesOnlyTheCulprit(t *testing.T) {
	// perMessage fails x's messages only, reporting a result per message.
	perMessage := func(_ context.Context, _ int, msgs []publish.Message) error {
		errs := make([]error, len(msgs))
		failed := false
		for i, m := range msgs {
			if m.Channel == "x" {
				errs[i], failed = &publish.Error{Provider: "fake", Status: 401, Err: errors.New("channel x is forbidden")}, true
			}
		}
		if !failed {
			return nil
		}
		return &publish.PartialError{Errs: errs}
	}
	tests := []struct {
		name      string
		publish   func(context.Context, int, []publish.Message) error
		wantCalls int
	}{
		{"400 for the whole request",
			failWith("x", -1, &publish.Error{Provider: "fake", Status: 400, Err: errors.New("invalid channel in batch")}), 4},
		{"rejected before sending",
			failWith("x", -1, &publish.Error{Provider: "fake", Rejected: true, Err: errors.New("message 3 is too large")}), 4},
		{"per-message results", perMessage, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &fakeProvider{publish: tt.publish}
				h := startRelay(t, baseConfig(), p, nil)
				a := h.submit(renders("a", "p", "1"))
				b := h.submit(renders("b", "p", "1"))
				x := h.submit(renders("x", "p", "1"))
				advance(time.Minute)

				calls := p.Calls()
				if len(calls) == 0 || !calls[0].has("a") || !calls[0].has("b") || !calls[0].has("x") {
					t.Fatalf("first call %+v, want one call shared by a, b and x", calls)
				}
				if len(calls) != tt.wantCalls {
					t.Errorf("%d calls, want %d: the shared one, then each channel it failed alone", len(calls), tt.wantCalls)
				}
				for _, ch := range []string{"a", "b"} {
					if got := describeAll(t, p.Accepted(ch)); !slices.Equal(got, []string{"p=1 |"}) {
						t.Errorf("innocent channel %s published %q, want once", ch, got)
					}
				}
				if l := h.onlyLetter(); l.Channel != "x" || l.Reason != dlq.ReasonPermanent || l.Attempts != 1 || !slices.Equal(l.SourceSeqs, seqsOf(x)) {
					t.Errorf("letter channel %q reason %q attempts %d seqs %v", l.Channel, l.Reason, l.Attempts, l.SourceSeqs)
				}
				checkAckedOnce(t, append(append(a, b...), x...)...)
				checkAckedAfter(t, h.ops, letterOp(dlq.ReasonPermanent, "x"), x...)
			})
		})
	}
}

// A job waiting to retry takes the channel's newer events only while it stays within
// LIVE_BATCH_MAX_EVENTS; the rest waits for the next jobs, which go out after it, in
// order. (It used to absorb every newer event, however many.)
func TestRetriedJobKeepsToTheLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.MaxEvents = 3
		p := &fakeProvider{publish: failWith("a", 3, err500())}
		h := startRelay(t, cfg, p, nil)

		srcs := h.submit(renders("a", "p01", "v"))
		advance(1200 * time.Millisecond) // the first attempt failed at 1 s
		for i := 2; i <= 10; i++ {
			srcs = append(srcs, h.submit(renders("a", fmt.Sprintf("p%02d", i), "v"))...)
		}
		advance(time.Minute)

		var posts []string
		for _, c := range p.CallsWith("a") {
			for _, m := range c.Msgs {
				ev, err := event.Decode(append([]byte(`{"v":1,"channel":"a",`), m.Data[1:]...))
				if err != nil {
					t.Fatal(err)
				}
				if len(ev.Renders) > cfg.MaxEvents {
					t.Errorf("a message of %d posts: its job went past MaxEvents %d", len(ev.Renders), cfg.MaxEvents)
				}
			}
		}
		for _, d := range describeAll(t, p.Accepted("a")) {
			for _, f := range strings.Fields(strings.TrimSuffix(d, "|")) {
				posts = append(posts, strings.TrimSuffix(f, "=v"))
			}
		}
		want := make([]string, 10)
		for i := range want {
			want[i] = fmt.Sprintf("p%02d", i+1)
		}
		if !slices.Equal(posts, want) {
			t.Errorf("published posts %v, want each once, in order: %v", posts, want)
		}
		checkAckedOnce(t, srcs...)
	})
}
