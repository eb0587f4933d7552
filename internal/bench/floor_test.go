package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/event"
)

func render(ch, post string, at int64, size int) event.Event {
	return event.Event{Channel: ch, Revision: at, Renders: []event.Render{{ID: post, Show: true, Content: strings.Repeat("x", size)}}}
}

func removal(ch, post string, at int64) event.Event {
	return event.Event{Channel: ch, Revision: at, Removals: []string{post}}
}

func TestFloorGroupsPerChannelWithinOneWindowOfTheGroupsFirstEvent(t *testing.T) {
	f := newFloorRecorder()
	ms := int64(time.Millisecond / time.Microsecond)
	for _, ev := range []event.Event{
		render("a", "p1", 0, 10),      // a: group 1 starts
		render("b", "q1", 1*ms, 10),   // b: group 1 starts
		render("a", "p1", 10*ms, 10),  // a: within 25 ms of 0
		render("a", "p2", 25*ms, 10),  // a: exactly 25 ms after: still within
		render("a", "p1", 26*ms, 10),  // a: more than 25 ms after 0: group 2 starts at 26
		render("b", "q1", 40*ms, 10),  // b: group 2
		render("a", "p1", 50*ms, 10),  // a: within 25 ms of 26: group 2 (a chain of close events does not extend it)
		render("a", "p1", 52*ms, 10),  // a: more than 25 ms after 26: group 3
		removal("b", "q1", 45*ms),     // b: within 25 ms of 40: group 2
		render("c", "r1", 1000*ms, 1), // c: group 1
	} {
		f.add(ev)
	}
	got := f.floor(25*time.Millisecond, 10240)
	if want := (floor{Groups: 3 + 2 + 1, Split: 6}); got != want {
		t.Fatalf("floor = %+v, want %+v", got, want)
	}
	if got := f.floor(0, 10240); got.Groups != 10 { // a window of 0 joins only events of one microsecond
		t.Fatalf("window 0: %d groups, want 10", got.Groups)
	}
	if got := f.floor(time.Hour, 10240); got.Groups != 3 {
		t.Fatalf("window 1h: %d groups, want one per channel", got.Groups)
	}
}

func TestFloorSplitsAGroupAsTheProviderLimitRequires(t *testing.T) {
	f := newFloorRecorder()
	// One group of channel a: p1 and p2 of 6 KB each cannot share a 10 KB message;
	// p1's second edit replaces its first; p3's render is cancelled by its removal,
	// which remains and fits beside p2.
	for _, ev := range []event.Event{
		render("a", "p1", 0, 6000),
		render("a", "p2", 1, 6000),
		render("a", "p1", 2, 6000),
		render("a", "p3", 3, 6000),
		removal("a", "p3", 4),
		render("a", "big", 5, 20000), // too big for any message: dead-lettered, not counted
	} {
		f.add(ev)
	}
	got := f.floor(25*time.Millisecond, 10240)
	if want := (floor{Groups: 1, Split: 2}); got != want {
		t.Fatalf("floor = %+v, want %+v", got, want)
	}
	// A removal of a post, then its render again: the removal is cancelled and the
	// post appears anew; one small message.
	g := newFloorRecorder()
	g.add(removal("b", "x", 0))
	g.add(render("b", "x", 1, 10))
	if got := g.floor(25*time.Millisecond, 10240); got != (floor{Groups: 1, Split: 1}) {
		t.Fatalf("floor = %+v, want one group of one message", got)
	}
}
