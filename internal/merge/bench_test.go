package merge

import (
	"fmt"
	"strings"
	"testing"

	"github.com/liverelay/liverelay/internal/event"
)

func benchEvents(n, posts, size int) []event.Event {
	html := `<div class="live-post"><p>` + strings.Repeat("The crowd <cheers> & sings. ", size/28) + `</p></div>`
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{Channel: "c", Revision: int64(i + 1),
			Renders: []event.Render{{ID: fmt.Sprintf("post-%04d", i%posts), Show: true, Content: html}}}
	}
	return evs
}

// BenchmarkAdd merges 100 events (20 posts, 1 KB each) into one update.
func BenchmarkAdd(b *testing.B) {
	evs := benchEvents(100, 20, 1000)
	b.ReportAllocs()
	for b.Loop() {
		u := New("c")
		for _, ev := range evs {
			u.Add(ev)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}

// BenchmarkSplitFits encodes an update of 8 posts of 1 KB that fits one Pusher message.
func BenchmarkSplitFits(b *testing.B) {
	benchSplit(b, 8, func(n int) bool { return n == 1 })
}

// BenchmarkSplitMany splits 50 posts of 1 KB into 10 KB messages.
func BenchmarkSplitMany(b *testing.B) {
	benchSplit(b, 50, func(n int) bool { return n >= 5 })
}

// benchSplit splits an update of posts posts of 1 KB into 10 KB messages, failing b
// when the number of messages is not one that ok accepts.
func benchSplit(b *testing.B, posts int, ok func(messages int) bool) {
	b.Helper()
	u := New("c")
	for _, ev := range benchEvents(posts, posts, 1000) {
		u.Add(ev)
	}
	b.ReportAllocs()
	for b.Loop() {
		if msgs, _ := u.Split(10240); !ok(len(msgs)) {
			b.Fatalf("%d messages", len(msgs))
		}
	}
}
