package relay_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/liverelay/liverelay/internal/event"
)

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
