package bench

import (
	"sync"
	"time"

	"github.com/liverelay/liverelay/internal/event"
)

// framing is the size of an empty update, {"renders":{},"removals":[]}, as
// internal/merge encodes it.
const framing = len(`{"renders":{},"removals":[]}`)

// floorRecorder keeps what the floor computation needs of every event the load
// published — its channel, its emission time and the size of each operation — and
// none of the content.
type floorRecorder struct {
	mu       sync.Mutex
	channels map[string]int32
	events   []floorEvent
	ops      []floorOp
}

type floorEvent struct {
	channel int32
	at      int64 // emission time (the revision clock), microseconds
	ops     int32 // index past the event's last op in floorRecorder.ops
}

type floorOp struct {
	post   string
	size   int32 // encoded size: of the render, or of the post id for a removal
	remove bool
}

func newFloorRecorder() *floorRecorder {
	return &floorRecorder{channels: map[string]int32{}}
}

// add records ev, published now.
func (f *floorRecorder) add(ev event.Event) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.channels[ev.Channel]
	if !ok {
		ch = int32(len(f.channels))
		f.channels[ev.Channel] = ch
	}
	for _, r := range ev.Renders {
		f.ops = append(f.ops, floorOp{post: r.ID, size: int32(event.RenderSize(r))})
	}
	for _, id := range ev.Removals {
		f.ops = append(f.ops, floorOp{post: id, size: int32(event.StringSize(id)), remove: true})
	}
	f.events = append(f.events, floorEvent{channel: ch, at: ev.Revision, ops: int32(len(f.ops))})
}

// floor is the fewest provider messages any relay merging with window could send.
type floor struct {
	Groups int // one message per group: a channel's events within one window
	Split  int // the groups' updates split to the provider's message size, as internal/merge splits
}

// floor groups each channel's events: a group starts at the channel's first event and
// takes every later event within window of that first one; the next event after it
// starts a new group. A relay with that window can do no better than one update per
// group (Groups); with a provider that limits a message to maxData bytes, an update
// bigger than that is split, as internal/merge splits it (Split).
func (f *floorRecorder) floor(window time.Duration, maxData int) floor {
	f.mu.Lock()
	defer f.mu.Unlock()
	win := window.Microseconds()
	groups := make([]*floorGroup, len(f.channels))
	var out floor
	closeGroup := func(g *floorGroup) {
		out.Groups++
		out.Split += g.messages(maxData)
	}
	first := int32(0)
	for _, ev := range f.events {
		g := groups[ev.channel]
		if g == nil || ev.at-g.start > win {
			if g != nil {
				closeGroup(g)
			}
			g = &floorGroup{start: ev.at, live: map[string]int{}, removed: map[string]bool{}}
			groups[ev.channel] = g
		}
		for _, op := range f.ops[first:ev.ops] {
			g.apply(op)
		}
		first = ev.ops
	}
	for _, g := range groups {
		if g != nil {
			closeGroup(g)
		}
	}
	return out
}

// floorGroup is one group's merged update, as internal/merge folds it: a render of a
// post replaces an earlier one in place and cancels its removal; a removal drops a
// pending render of the post.
type floorGroup struct {
	start    int64
	renders  []floorOp      // first-appearance order; dropped ones have size 0
	live     map[string]int // post → index in renders
	removals []floorOp
	removed  map[string]bool
}

func (g *floorGroup) apply(op floorOp) {
	if op.remove {
		if i, ok := g.live[op.post]; ok {
			g.renders[i].size = 0
			delete(g.live, op.post)
		}
		if !g.removed[op.post] {
			g.removed[op.post] = true
			g.removals = append(g.removals, op)
		}
		return
	}
	if g.removed[op.post] {
		g.removed[op.post] = false
		for i := range g.removals {
			if g.removals[i].post == op.post {
				g.removals[i].size = 0
			}
		}
	}
	if i, ok := g.live[op.post]; ok {
		g.renders[i].size = op.size
		return
	}
	g.live[op.post] = len(g.renders)
	g.renders = append(g.renders, op)
}

// messages packs the group's renders in order, then its removals, into messages of at
// most maxData bytes, as merge.Update.Split does. A render too big for any message is
// not counted: it would be dead-lettered.
func (g *floorGroup) messages(maxData int) int {
	n, size, items := 0, framing, 0
	put := func(s int) {
		add := s
		if items > 0 {
			add++ // comma
		}
		if size+add > maxData && items > 0 {
			n++
			size, items, add = framing, 0, s
		}
		size += add
		items++
	}
	for _, r := range g.renders {
		if r.size > 0 && framing+int(r.size) <= maxData {
			put(int(r.size))
		}
	}
	for _, r := range g.removals {
		if r.size > 0 {
			put(int(r.size))
		}
	}
	if items > 0 {
		n++
	}
	return n
}
