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
	"github.com/liverelay/liverelay/internal/relay"
	"github.com/liverelay/liverelay/internal/retry"
)

// advance lets fake time pass, then lets every goroutine settle.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func TestMergesOneChannelWithinWindow(t *testing.T) {
	tests := []struct {
		name   string
		events []event.Event
		want   string
	}{
		{"an edit keeps the post's first position",
			[]event.Event{renders("page", "a", "1"), renders("page", "b", "1"), renders("page", "a", "2")}, "a=2 b=1 |"},
		{"a removal drops a pending render",
			[]event.Event{renders("page", "a", "1", "b", "1"), removals("page", "a")}, "b=1 | -a"},
		{"a render cancels an earlier removal",
			[]event.Event{removals("page", "a"), renders("page", "a", "2")}, "a=2 |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				p := &fakeProvider{publish: func(ctx context.Context, _ int, _ []publish.Message) error {
					select {
					case <-release:
						return nil
					case <-ctx.Done():
						return &publish.Error{Provider: "fake", Err: ctx.Err()}
					}
				}}
				h := startRelay(t, baseConfig(), p, nil)
				srcs := h.submit(tt.events...)

				advance(time.Second) // the window
				calls := p.Calls()
				if len(calls) != 1 || len(calls[0].Msgs) != 1 {
					t.Fatalf("after the window: %d calls %+v, want one call of one message", len(calls), calls)
				}
				if at := calls[0].At.Sub(h.start); at != time.Second {
					t.Errorf("published at %v, want at the end of the 1s window", at)
				}
				if got := describe(t, calls[0].Msgs[0].Data); got != tt.want {
					t.Errorf("published %q, want %q", got, tt.want)
				}
				checkNotAcked(t, srcs...) // the provider has not answered yet

				close(release)
				synctest.Wait()
				checkAckedOnce(t, srcs...)
				checkAckedAfter(t, h.ops, "publish page", srcs...)

				if err := h.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				checkAckedOnce(t, srcs...)
				if n := len(p.Calls()); n != 1 {
					t.Errorf("%d publish calls, want 1", n)
				}
			})
		})
	}
}

// windowCase submits events at given times and expects updates published within
// given time ranges (since the relay started).
type windowCase struct {
	name   string
	window time.Duration
	steps  []step
	want   []wantUpdate
}

type step struct {
	after time.Duration // sleep before submitting
	ev    event.Event
}

type wantUpdate struct {
	from, to time.Duration
	content  string
}

func runWindowCases(t *testing.T, tests []windowCase) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := baseConfig()
				cfg.Window = tt.window
				p := &fakeProvider{}
				h := startRelay(t, cfg, p, nil)
				var srcs []*fakeSource
				for _, s := range tt.steps {
					advance(s.after)
					srcs = append(srcs, h.submit(s.ev)...)
					synctest.Wait()
				}
				advance(time.Minute)

				got := describeAll(t, p.Accepted("page"))
				at := p.AcceptedAt("page")
				var want []string
				for _, w := range tt.want {
					want = append(want, w.content)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("published %q, want %q", got, want)
				}
				for i, w := range tt.want {
					if d := at[i].Sub(h.start); d < w.from || d > w.to {
						t.Errorf("update %d (%q) published at %v, want within [%v, %v]", i+1, w.content, d, w.from, w.to)
					}
				}
				checkAckedOnce(t, srcs...)
			})
		})
	}
}

func TestWindow(t *testing.T) {
	runWindowCases(t, []windowCase{
		{name: "events within the window merge into one update", window: time.Second,
			steps: []step{{0, renders("page", "a", "1")}, {500 * time.Millisecond, renders("page", "b", "1")}, {400 * time.Millisecond, renders("page", "a", "2")}},
			want:  []wantUpdate{{time.Second, time.Second, "a=2 b=1 |"}}},
		{name: "an event after the window goes into a second update", window: time.Second,
			steps: []step{{0, renders("page", "a", "1")}, {1500 * time.Millisecond, renders("page", "b", "1")}},
			want: []wantUpdate{{time.Second, time.Second, "a=1 |"},
				{1500 * time.Millisecond, 2500 * time.Millisecond, "b=1 |"}}},
		{name: "with no window an idle channel publishes each event at once", window: 0,
			steps: []step{{0, renders("page", "a", "1")}, {time.Second, renders("page", "b", "1")}, {time.Second, renders("page", "a", "2")}},
			want: []wantUpdate{{0, 0, "a=1 |"}, {time.Second, time.Second, "b=1 |"},
				{2 * time.Second, 2 * time.Second, "a=2 |"}}},
	})
}

// TestWindowStartsAtFirstEvent: the window is how long a channel's first event waits
// for others, so it is measured from that event's arrival — also when the relay was
// idle before it arrived.
func TestWindowStartsAtFirstEvent(t *testing.T) {
	runWindowCases(t, []windowCase{
		{name: "after an idle relay", window: time.Second,
			steps: []step{{10 * time.Second, renders("page", "a", "1")}, {500 * time.Millisecond, renders("page", "b", "1")}},
			want:  []wantUpdate{{11 * time.Second, 11 * time.Second, "a=1 b=1 |"}}},
		{name: "after a previous update", window: time.Second,
			steps: []step{{0, renders("page", "a", "1")}, {1500 * time.Millisecond, renders("page", "b", "1")}},
			want: []wantUpdate{{time.Second, time.Second, "a=1 |"},
				{2500 * time.Millisecond, 2500 * time.Millisecond, "b=1 |"}}},
	})
}

func TestFlushesEarlyWhenFull(t *testing.T) {
	tests := []struct {
		name   string
		config func(*relay.Config)
		events []event.Event
		want   string
	}{
		{"MaxEvents", func(c *relay.Config) { c.MaxEvents = 3 },
			[]event.Event{renders("page", "a", "1"), renders("page", "b", "1"), renders("page", "c", "1")},
			"a=1 b=1 c=1 |"},
		{"MaxBytes", func(c *relay.Config) { c.MaxBytes = 120 },
			[]event.Event{renders("page", "a", strings.Repeat("x", 20)), renders("page", "b", strings.Repeat("y", 80))},
			"a=" + strings.Repeat("x", 20) + " b=" + strings.Repeat("y", 80) + " |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := baseConfig()
				cfg.Window = time.Hour
				tt.config(&cfg)
				p := &fakeProvider{}
				h := startRelay(t, cfg, p, nil)

				last := len(tt.events) - 1
				srcs := h.submit(tt.events[:last]...)
				synctest.Wait()
				if n := len(p.Calls()); n != 0 {
					t.Fatalf("%d publish calls before the limit was reached, want 0", n)
				}
				srcs = append(srcs, h.submit(tt.events[last])...)
				synctest.Wait()
				got := describeAll(t, p.Accepted("page"))
				if !slices.Equal(got, []string{tt.want}) {
					t.Fatalf("published %q at once, want [%q]", got, tt.want)
				}
				if at := p.AcceptedAt("page")[0].Sub(h.start); at != 0 {
					t.Errorf("published at %v, want at once", at)
				}
				checkAckedOnce(t, srcs...)
			})
		})
	}
}

func TestBatchesChannelsIntoSharedCalls(t *testing.T) {
	post := strings.Repeat("x", 100) // with MaxData 200, one post per message
	tests := []struct {
		name      string
		channels  int
		posts     int // per channel, one message each when MaxData is 200
		maxData   int
		wantCalls int
	}{
		{"one message per channel", 25, 1, 10240, 3},
		{"two messages per channel", 25, 2, 200, 5},
		{"a channel's messages are never split across calls", 25, 3, 200, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := baseConfig()
				cfg.Concurrency = 4
				p := &fakeProvider{limits: publish.Limits{MaxData: tt.maxData, MaxBatch: 10}}
				h := startRelay(t, cfg, p, nil)
				var srcs []*fakeSource
				for i := range tt.channels {
					var kv []string
					for j := range tt.posts {
						kv = append(kv, fmt.Sprintf("p%d", j), post)
					}
					srcs = append(srcs, h.submit(renders(fmt.Sprintf("ch-%02d", i), kv...))...)
				}
				advance(time.Minute)

				calls := p.Calls()
				if len(calls) != tt.wantCalls {
					t.Errorf("%d publish calls, want %d", len(calls), tt.wantCalls)
				}
				seen := map[string]int{}
				for i, c := range calls {
					if len(c.Msgs) > 10 {
						t.Errorf("call %d has %d messages, more than MaxBatch 10", i, len(c.Msgs))
					}
					for k, m := range c.Msgs {
						if k == 0 || c.Msgs[k-1].Channel != m.Channel {
							seen[m.Channel]++
						}
					}
				}
				for i := range tt.channels {
					ch := fmt.Sprintf("ch-%02d", i)
					if seen[ch] != 1 {
						t.Errorf("channel %s appears in %d runs of messages, want one run in one call", ch, seen[ch])
					}
					var want []string
					for j := range tt.posts {
						want = append(want, fmt.Sprintf("p%d=%s |", j, post))
					}
					if got := describeAll(t, p.Accepted(ch)); !slices.Equal(got, want) {
						t.Errorf("channel %s: published %q, want %q", ch, got, want)
					}
				}
				checkAckedOnce(t, srcs...)
			})
		})
	}
}

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

func TestPermanentFailureIsDeadLettered(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"401", &publish.Error{Provider: "fake", Status: 401, Err: errors.New("invalid signature")}},
		{"403", &publish.Error{Provider: "fake", Status: 403, Err: errors.New("app disabled")}},
		{"400", &publish.Error{Provider: "fake", Status: 400, Err: errors.New("bad request")}},
		{"rejected before sending", &publish.Error{Provider: "fake", Rejected: true, Err: errors.New("data too large")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &fakeProvider{publish: failWith("page", -1, tt.err)}
				h := startRelay(t, baseConfig(), p, nil)
				e1 := withRevision(renders("page", "p1", "v1"), 100)
				e1.EmittedAt = h.start.Add(-2 * time.Second)
				e2 := withRevision(renders("page", "p2", "v1"), 200)
				e2.EmittedAt = h.start.Add(-time.Second)
				e3 := withRevision(renders("page", "p1", "v2"), 300)
				srcs := h.submit(e1, e2, e3)
				advance(time.Minute)

				if n := len(p.Calls()); n != 1 {
					t.Errorf("%d publish calls, want 1: a permanent failure is not retried", n)
				}
				letters := h.dead.Letters()
				if len(letters) != 1 {
					t.Fatalf("%d letters, want 1", len(letters))
				}
				l := letters[0]
				failedAt := h.start.Add(time.Second)
				switch {
				case l.Reason != dlq.ReasonPermanent:
					t.Errorf("reason %q, want %q", l.Reason, dlq.ReasonPermanent)
				case l.Attempts != 1:
					t.Errorf("attempts %d, want 1", l.Attempts)
				case !slices.Equal(l.SourceSeqs, seqsOf(srcs)):
					t.Errorf("source seqs %v, want %v", l.SourceSeqs, seqsOf(srcs))
				case l.Channel != "page" || l.Token != event.Token("page") || l.Provider != "fake":
					t.Errorf("channel %q token %q provider %q", l.Channel, l.Token, l.Provider)
				case l.SourceSubject != "live.events."+event.Token("page"):
					t.Errorf("source subject %q", l.SourceSubject)
				case !l.FirstFailure.Equal(failedAt) || !l.LastFailure.Equal(failedAt):
					t.Errorf("failures first %v last %v, want both at %v", l.FirstFailure, l.LastFailure, failedAt)
				case l.Detail == "":
					t.Errorf("no detail")
				}
				ev, err := event.Decode(l.Body)
				if err != nil {
					t.Fatalf("letter body %s is not a valid event: %v", l.Body, err)
				}
				if got, want := describeEvent(ev), "p1=v2 p2=v1 |"; ev.Channel != "page" || got != want {
					t.Errorf("letter body: channel %q content %q, want page %q", ev.Channel, got, want)
				}
				if ev.Revision != 300 || !ev.EmittedAt.Equal(e1.EmittedAt) {
					t.Errorf("letter body: revision %d emitted_at %v, want 300 and %v", ev.Revision, ev.EmittedAt, e1.EmittedAt)
				}
				if got := p.Accepted("page"); len(got) != 0 {
					t.Errorf("provider accepted %q", got)
				}
				checkAckedOnce(t, srcs...)
				checkAckedAfter(t, h.ops, "dlq "+string(dlq.ReasonPermanent)+" page", srcs...)
			})
		})
	}
}

func TestExhaustedRetriesAreDeadLettered(t *testing.T) {
	tests := []struct {
		name      string
		policy    retry.Policy
		err       error
		wantCalls int // 0: not checked
	}{
		{"MaxAttempts 3, 500 every time", retry.Policy{Initial: time.Second, Max: 8 * time.Second, MaxAttempts: 3}, err500(), 3},
		{"MaxAttempts 2, 429 every time", retry.Policy{Initial: time.Second, Max: 8 * time.Second, MaxAttempts: 2},
			&publish.Error{Provider: "fake", Status: 429, RetryAfter: 2 * time.Second}, 2},
		{"MaxElapsed 10s", retry.Policy{Initial: time.Second, Max: 2 * time.Second, MaxElapsed: 10 * time.Second}, err500(), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := baseConfig()
				cfg.Retry = tt.policy
				p := &fakeProvider{publish: failWith("page", -1, tt.err)}
				h := startRelay(t, cfg, p, nil)
				srcs := h.submit(renders("page", "a", "1"), renders("page", "b", "1"))
				advance(10 * time.Minute)

				calls := p.Calls()
				if tt.wantCalls > 0 && len(calls) != tt.wantCalls {
					t.Errorf("%d publish calls, want %d", len(calls), tt.wantCalls)
				}
				if len(calls) < 2 {
					t.Fatalf("%d publish calls: no retry", len(calls))
				}
				first, last := calls[0].At, calls[len(calls)-1].At
				if tt.policy.MaxElapsed > 0 && last.Sub(first) > tt.policy.MaxElapsed {
					t.Errorf("retried for %v, beyond MaxElapsed %v", last.Sub(first), tt.policy.MaxElapsed)
				}
				letters := h.dead.Letters()
				if len(letters) != 1 {
					t.Fatalf("%d letters, want 1", len(letters))
				}
				l := letters[0]
				if l.Reason != dlq.ReasonExhausted || l.Attempts != len(calls) || !slices.Equal(l.SourceSeqs, seqsOf(srcs)) {
					t.Errorf("letter reason %q attempts %d seqs %v, want %q, %d, %v", l.Reason, l.Attempts, l.SourceSeqs, dlq.ReasonExhausted, len(calls), seqsOf(srcs))
				}
				if !l.FirstFailure.Equal(first) || !l.LastFailure.Equal(last) {
					t.Errorf("letter failures %v…%v, want %v…%v", l.FirstFailure, l.LastFailure, first, last)
				}
				if ev, err := event.Decode(l.Body); err != nil || describeEvent(ev) != "a=1 b=1 |" {
					t.Errorf("letter body %s: %v", l.Body, err)
				}
				checkAckedOnce(t, srcs...)
				checkAckedAfter(t, h.ops, "dlq "+string(dlq.ReasonExhausted)+" page", srcs...)
			})
		})
	}
}

func TestRejectedChannelIsDeadLettered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const bad = "private-encrypted-page"
		p := &fakeProvider{check: func(ch string) error {
			if ch == bad {
				return &publish.Error{Provider: "fake", Rejected: true, Err: errors.New("encrypted channels are not supported")}
			}
			return nil
		}}
		h := startRelay(t, baseConfig(), p, nil)
		b1 := h.submit(renders(bad, "a", "1"))
		good := h.submit(renders("page", "a", "1"))
		b2 := h.submit(renders(bad, "b", "1"))
		advance(time.Minute)

		if got := p.CallsWith(bad); len(got) != 0 {
			t.Errorf("%d publish calls carried the rejected channel, want none", len(got))
		}
		if got := describeAll(t, p.Accepted("page")); !slices.Equal(got, []string{"a=1 |"}) {
			t.Errorf("good channel published %q", got)
		}
		letters := h.dead.Letters()
		if len(letters) != 1 {
			t.Fatalf("%d letters, want 1", len(letters))
		}
		l := letters[0]
		if l.Reason != dlq.ReasonChannelRejected || l.Channel != bad || l.Attempts != 0 ||
			!slices.Equal(l.SourceSeqs, []uint64{b1[0].seq, b2[0].seq}) || !strings.Contains(l.Detail, "not supported") {
			t.Errorf("letter %+v", l)
		}
		if ev, err := event.Decode(l.Body); err != nil || describeEvent(ev) != "a=1 b=1 |" {
			t.Errorf("letter body %s: %v", l.Body, err)
		}
		checkAckedOnce(t, append(append(b1, b2...), good...)...)
		checkAckedAfter(t, h.ops, "dlq "+string(dlq.ReasonChannelRejected)+" "+bad, b1[0], b2[0])
	})
}

func TestOversizePostIsDeadLetteredAlone(t *testing.T) {
	big := strings.Repeat("x", 400)
	tests := []struct {
		name          string
		events        []event.Event
		wantPublished []string
	}{
		{"beside other posts", []event.Event{renders("page", "p1", "s1"), renders("page", "big", big), renders("page", "p3", "s3")},
			[]string{"p1=s1 p3=s3 |"}},
		{"alone in its update", []event.Event{renders("page", "big", big)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &fakeProvider{limits: publish.Limits{MaxData: 300, MaxBatch: 10}}
				h := startRelay(t, baseConfig(), p, nil)
				srcs := h.submit(tt.events...)
				advance(time.Minute)

				if got := describeAll(t, p.Accepted("page")); !slices.Equal(got, tt.wantPublished) {
					t.Errorf("published %q, want %q", got, tt.wantPublished)
				}
				for _, c := range p.Calls() {
					for _, m := range c.Msgs {
						if len(m.Data) > 300 {
							t.Errorf("message of %d bytes, over MaxData 300", len(m.Data))
						}
					}
				}
				letters := h.dead.Letters()
				if len(letters) != 1 {
					t.Fatalf("%d letters, want 1", len(letters))
				}
				l := letters[0]
				if l.Reason != dlq.ReasonPostTooLarge || !slices.Equal(l.SourceSeqs, seqsOf(srcs)) {
					t.Errorf("letter reason %q seqs %v", l.Reason, l.SourceSeqs)
				}
				ev, err := event.Decode(l.Body)
				if err != nil {
					t.Fatalf("letter body: %v", err)
				}
				if got, want := describeEvent(ev), "big="+big+" |"; ev.Channel != "page" || got != want {
					t.Errorf("letter holds %q, want only the oversize post", got)
				}
				checkAckedOnce(t, srcs...)
				checkAckedAfter(t, h.ops, "dlq "+string(dlq.ReasonPostTooLarge)+" page", srcs...)
				if tt.wantPublished != nil {
					checkAckedAfter(t, h.ops, "publish page", srcs...)
				}
			})
		})
	}
}

// TestOversizePostIsDeadLetteredOnce: the letter of an oversize post is written before
// the rest of the update is published; when that publish is retried, the letter must
// not be written again.
func TestOversizePostIsDeadLetteredOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		big := strings.Repeat("x", 400)
		p := &fakeProvider{limits: publish.Limits{MaxData: 300, MaxBatch: 10}, publish: failWith("page", 1, err500())}
		h := startRelay(t, baseConfig(), p, nil)
		srcs := h.submit(renders("page", "p1", "s1"), renders("page", "big", big))
		advance(1200 * time.Millisecond) // the first publish failed at 1s
		srcs = append(srcs, h.submit(renders("page", "p3", "s3"))...)
		advance(time.Minute)

		if got := describeAll(t, p.Accepted("page")); !slices.Equal(got, []string{"p1=s1 p3=s3 |"}) {
			t.Errorf("published %q", got)
		}
		var seqs [][]uint64
		for _, l := range h.dead.Letters() {
			seqs = append(seqs, l.SourceSeqs)
		}
		if len(seqs) != 1 {
			t.Errorf("the oversize post was dead-lettered %d times (source seqs %v), want once: "+
				"each retry writes it again, with other seqs once newer events merged, so the "+
				"stream's duplicate window does not drop the copies", len(seqs), seqs)
		}
		checkAckedOnce(t, srcs...)
	})
}

// TestDeadLetterWriteFailureHoldsAcks: nothing is acked until the letter is stored.
func TestDeadLetterWriteFailureHoldsAcks(t *testing.T) {
	big := strings.Repeat("x", 400)
	tests := []struct {
		name      string
		provider  *fakeProvider
		events    []event.Event
		reason    dlq.Reason
		published []string
		wantCalls int
	}{
		{"the provider refuses the update",
			&fakeProvider{publish: failWith("page", -1, &publish.Error{Provider: "fake", Status: 401})},
			[]event.Event{renders("page", "a", "1")}, dlq.ReasonPermanent, nil, 1},
		{"the provider rejects the channel",
			&fakeProvider{check: func(string) error { return &publish.Error{Provider: "fake", Rejected: true, Err: errors.New("no")} }},
			[]event.Event{renders("page", "a", "1")}, dlq.ReasonChannelRejected, nil, 0},
		{"a post is too large",
			&fakeProvider{limits: publish.Limits{MaxData: 300, MaxBatch: 10}},
			[]event.Event{renders("page", "a", "1"), renders("page", "big", big)}, dlq.ReasonPostTooLarge, []string{"a=1 |"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := &fakeDead{fail: 2}
				h := startRelay(t, baseConfig(), tt.provider, d)
				srcs := h.submit(tt.events...)
				for i := 0; d.Writes() < 3 && i < 1000; i++ {
					advance(100 * time.Millisecond)
					if d.Writes() < 3 {
						checkNotAcked(t, srcs...)
					}
				}
				if d.Writes() < 3 {
					t.Fatalf("%d dead-letter writes after 100s, want the relay to try again", d.Writes())
				}
				advance(time.Minute)

				if n := d.Writes(); n != 3 {
					t.Errorf("%d dead-letter writes, want 2 failures and 1 success", n)
				}
				if letters := d.Letters(); len(letters) != 1 || letters[0].Reason != tt.reason {
					t.Errorf("letters %+v, want one with reason %q", letters, tt.reason)
				}
				if got := describeAll(t, tt.provider.Accepted("page")); !slices.Equal(got, tt.published) {
					t.Errorf("published %q, want %q", got, tt.published)
				}
				if n := len(tt.provider.Calls()); n != tt.wantCalls {
					t.Errorf("%d publish calls, want %d", n, tt.wantCalls)
				}
				checkAckedOnce(t, srcs...)
				checkAckedAfter(t, h.ops, "dlq "+string(tt.reason)+" page", srcs...)
			})
		})
	}
}

// TestDeadLetterRetryKeepsNewerEventsOut: while a refused update waits for the
// dead-letter stream to come back, newer events of its channel are a new update, to be
// published: they were never refused.
func TestDeadLetterRetryKeepsNewerEventsOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fakeProvider{publish: failWith("page", 1, &publish.Error{Provider: "fake", Status: 401})}
		d := &fakeDead{fail: 1}
		h := startRelay(t, baseConfig(), p, d)
		refused := h.submit(renders("page", "p", "1"))
		advance(2 * time.Second) // refused at 1s; its letter could not be written
		newer := h.submit(renders("page", "q", "1"))
		advance(time.Minute)

		letters := d.Letters()
		if len(letters) != 1 {
			t.Fatalf("%d letters, want 1", len(letters))
		}
		ev, err := event.Decode(letters[0].Body)
		if err != nil {
			t.Fatalf("letter body: %v", err)
		}
		if got := describeEvent(ev); got != "p=1 |" || !slices.Equal(letters[0].SourceSeqs, seqsOf(refused)) {
			t.Errorf("letter holds %q from seqs %v, want only the refused update %q from %v: "+
				"the newer event was dead-lettered as %q without ever being published",
				got, letters[0].SourceSeqs, "p=1 |", seqsOf(refused), letters[0].Reason)
		}
		if got := describeAll(t, p.Accepted("page")); !slices.Equal(got, []string{"q=1 |"}) {
			t.Errorf("published %q, want the newer event %q", got, "q=1 |")
		}
		checkAckedOnce(t, append(refused, newer...)...)
	})
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
				letters := h.dead.Letters()
				if len(letters) != 1 {
					t.Fatalf("%d letters %+v, want only the culprit's", len(letters), letters)
				}
				if l := letters[0]; l.Channel != "x" || l.Reason != dlq.ReasonPermanent || l.Attempts != 1 || !slices.Equal(l.SourceSeqs, seqsOf(x)) {
					t.Errorf("letter channel %q reason %q attempts %d seqs %v", l.Channel, l.Reason, l.Attempts, l.SourceSeqs)
				}
				checkAckedOnce(t, append(append(a, b...), x...)...)
				checkAckedAfter(t, h.ops, "dlq "+string(dlq.ReasonPermanent)+" x", x...)
			})
		})
	}
}

// TestKeepAlive: messages held through a long retry are marked in progress often
// enough for JetStream not to deliver them again. cmd/worker sets KeepAlive to AckWait/3,
// so a message must be marked within 2×KeepAlive of its arrival and every KeepAlive
// after that.
func TestKeepAlive(t *testing.T) {
	tests := []struct {
		name      string
		keepAlive time.Duration
		prelude   func(h *harness)
	}{
		{"on a quiet relay", 5 * time.Second, func(*harness) {}},
		{"just after other activity", 10 * time.Second, func(h *harness) {
			advance(10*time.Second + time.Millisecond) // just after a keep-alive tick
			h.submit(renders("other", "o", "1"))
			advance(time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := baseConfig()
				cfg.Window = 0
				cfg.KeepAlive = tt.keepAlive
				p := &fakeProvider{publish: failWith("page", 1, &publish.Error{Provider: "fake", Status: 429, RetryAfter: time.Minute})}
				h := startRelay(t, cfg, p, nil)
				tt.prelude(h)
				srcs := h.submit(renders("page", "a", "1"), renders("page", "b", "1"))
				advance(2 * time.Minute)

				if n := len(p.CallsWith("page")); n != 2 {
					t.Fatalf("%d calls with the page, want a failure and a retry", n)
				}
				checkAckedOnce(t, srcs...)
				ka := tt.keepAlive
				for _, s := range srcs {
					marks, acked := s.ProgressAt(), s.AckedAt()
					held := acked.Sub(s.receivedAt)
					if n, lo, hi := len(marks), int(held/ka)-2, int(held/ka)+1; n < lo || n > hi {
						t.Errorf("seq %d held %v: marked in progress %d times, want about every %v (%d to %d)", s.seq, held, n, ka, lo, hi)
					}
					if len(marks) == 0 {
						continue
					}
					if first := marks[0].Sub(s.receivedAt); first > 2*ka {
						t.Errorf("seq %d first marked in progress %v after it arrived, more than 2×KeepAlive (%v): with AckWait = 3×KeepAlive it is redelivered", s.seq, first, 2*ka)
					}
					for i := 1; i < len(marks); i++ {
						if gap := marks[i].Sub(marks[i-1]); gap > ka {
							t.Errorf("seq %d: %v between in-progress marks, more than KeepAlive %v", s.seq, gap, ka)
						}
					}
					if last := marks[len(marks)-1]; last.After(acked) {
						t.Errorf("seq %d marked in progress at %v, after its ack at %v", s.seq, last.Sub(h.start), acked.Sub(h.start))
					}
				}
			})
		})
	}
}

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
				cfg := baseConfig()
				cfg.Window = tt.window
				p := &fakeProvider{publish: tt.publish}
				h := startRelay(t, cfg, p, nil)
				srcs := tt.run(h)
				synctest.Wait()

				stopAt := time.Now()
				if err := h.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				if took := time.Since(stopAt); took > cfg.ShutdownTimeout {
					t.Errorf("Run took %v to return, more than ShutdownTimeout %v", took, cfg.ShutdownTimeout)
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
				cfg := baseConfig()
				cfg.Window = tt.window
				p := &fakeProvider{publish: tt.publish}
				h := startRelay(t, cfg, p, nil)
				srcs := h.submit(renders("page", "a", "1"), renders("other", "b", "1"))
				advance(time.Second)
				srcs = append(srcs, h.submit(renders("page", "a", "2"))...)
				synctest.Wait()

				stopAt := time.Now()
				if err := h.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				if took := time.Since(stopAt); took > cfg.ShutdownTimeout+100*time.Millisecond {
					t.Errorf("Run took %v to return, want at most ShutdownTimeout %v", took, cfg.ShutdownTimeout)
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

func TestOlderRevisionIsDropped(t *testing.T) {
	tests := []struct {
		name  string
		fail  int // publishes that fail with 500 first
		steps []step
	}{
		{"an older render in the same window", 0,
			[]step{{0, withRevision(renders("page", "p", "new"), 200)}, {100 * time.Millisecond, withRevision(renders("page", "p", "old"), 100)}}},
		{"an older removal in the same window", 0,
			[]step{{0, withRevision(renders("page", "p", "new"), 200)}, {100 * time.Millisecond, withRevision(removals("page", "p"), 100)}}},
		{"an older render arriving while the newer one waits a retry", 1,
			[]step{{0, withRevision(renders("page", "p", "new"), 200)}, {1200 * time.Millisecond, withRevision(renders("page", "p", "old"), 100)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &fakeProvider{publish: failWith("page", tt.fail, err500())}
				h := startRelay(t, baseConfig(), p, nil)
				var srcs []*fakeSource
				for _, s := range tt.steps {
					advance(s.after)
					srcs = append(srcs, h.submit(s.ev)...)
				}
				advance(time.Minute)

				if got, want := describeAll(t, p.Accepted("page")), []string{"p=new |"}; !slices.Equal(got, want) {
					t.Errorf("published %q, want %q", got, want)
				}
				if n := len(p.CallsWith("page")); n != tt.fail+1 {
					t.Errorf("%d publish calls, want %d", n, tt.fail+1)
				}
				if n := len(h.dead.Letters()); n != 0 {
					t.Errorf("%d letters, want none", n)
				}
				checkAckedOnce(t, srcs...)
			})
		})
	}
}
