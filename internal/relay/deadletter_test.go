package relay_test

import (
	"errors"
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
				l := h.onlyLetter()
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
				checkAckedAfter(t, h.ops, letterOp(dlq.ReasonPermanent, "page"), srcs...)
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
				l := h.onlyLetter()
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
				checkAckedAfter(t, h.ops, letterOp(dlq.ReasonExhausted, "page"), srcs...)
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
		l := h.onlyLetter()
		if l.Reason != dlq.ReasonChannelRejected || l.Channel != bad || l.Attempts != 0 ||
			!slices.Equal(l.SourceSeqs, []uint64{b1[0].seq, b2[0].seq}) || !strings.Contains(l.Detail, "not supported") {
			t.Errorf("letter %+v", l)
		}
		if ev, err := event.Decode(l.Body); err != nil || describeEvent(ev) != "a=1 b=1 |" {
			t.Errorf("letter body %s: %v", l.Body, err)
		}
		checkAckedOnce(t, append(append(b1, b2...), good...)...)
		checkAckedAfter(t, h.ops, letterOp(dlq.ReasonChannelRejected, bad), b1[0], b2[0])
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
				l := h.onlyLetter()
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
				checkAckedAfter(t, h.ops, letterOp(dlq.ReasonPostTooLarge, "page"), srcs...)
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
				checkAckedAfter(t, h.ops, letterOp(tt.reason, "page"), srcs...)
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
