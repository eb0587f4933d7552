package relay_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/relay"
)

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
				h, p := startWindowed(t, tt.window, nil)
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
