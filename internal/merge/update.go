// Package merge folds a channel's change events into one update, following the merge rule
// of docs/architecture.md, and encodes that update for the browser, split to a provider's size.
package merge

import (
	"time"

	"github.com/liverelay/liverelay/internal/event"
)

// Update is the merged effect of a run of one channel's events, in stream order:
//
//   - a render of post p replaces an earlier render of p (keeping p's position) and
//     cancels an earlier removal of p;
//   - a removal of p drops a pending render of p; a later render of p then appears
//     anew, at the end, as the browser would insert it;
//   - with revisions present, an operation older than the one already merged for the
//     same post is ignored.
//
// The zero value is not ready: use New. An Update is owned by one goroutine.
type Update struct {
	Channel string

	entries  []entry        // renders in first-appearance order; dropped ones are holes
	live     map[string]int // post id → index in entries, for renders not dropped
	removals []string
	removed  map[string]int // post id → index in removals, -1 once cancelled
	revision map[string]int64

	approx     int // raw bytes of the live renders and removals: a cheap lower bound of the encoded size
	nRenders   int
	nRemovals  int
	events     int
	oldestEmit time.Time
	maxRev     int64
}

type entry struct {
	render  event.Render
	dropped bool
}

// rawSize is what a render adds to the approximate size: its bytes and framing, before
// JSON escaping (which only grows it). Encoding exactly is left to the publish, once
// per update instead of once per event.
func rawSize(r event.Render) int {
	return len(r.ID) + len(r.Content) + len(`"":{"show":true,"content":""}`)
}

// New returns an empty update of channel.
func New(channel string) *Update {
	return &Update{
		Channel:  channel,
		live:     map[string]int{},
		removed:  map[string]int{},
		revision: map[string]int64{},
	}
}

// Add merges ev, which must be of u's channel and come after every event merged so far.
// It returns how many of the event's operations were ignored as older than what the
// update already holds.
func (u *Update) Add(ev event.Event) (stale int) {
	u.events++
	if !ev.EmittedAt.IsZero() && (u.oldestEmit.IsZero() || ev.EmittedAt.Before(u.oldestEmit)) {
		u.oldestEmit = ev.EmittedAt
	}
	if ev.Revision > u.maxRev {
		u.maxRev = ev.Revision
	}
	for _, rev := range ev.PostRevisions {
		u.maxRev = max(u.maxRev, rev)
	}
	for _, r := range ev.Renders {
		if !u.fresh(r.ID, ev.RevisionOf(r.ID)) {
			stale++
			continue
		}
		u.render(r)
	}
	for _, id := range ev.Removals {
		if !u.fresh(id, ev.RevisionOf(id)) {
			stale++
			continue
		}
		u.remove(id)
	}
	return stale
}

// fresh records rev for post id and reports whether an operation of that revision may
// be applied.
func (u *Update) fresh(id string, rev int64) bool {
	if rev == 0 {
		return true
	}
	if rev < u.revision[id] {
		return false
	}
	u.revision[id] = rev
	return true
}

func (u *Update) render(r event.Render) {
	if i, ok := u.removed[r.ID]; ok && i >= 0 {
		u.approx -= len(r.ID) + 2
		u.removed[r.ID] = -1
		u.removals[i] = ""
		u.nRemovals--
	}
	if i, ok := u.live[r.ID]; ok {
		u.approx += rawSize(r) - rawSize(u.entries[i].render)
		u.entries[i] = entry{render: r}
		return
	}
	u.live[r.ID] = len(u.entries)
	u.entries = append(u.entries, entry{render: r})
	u.approx += rawSize(r)
	u.nRenders++
}

// dropRender forgets the render of post id, if one is merged.
func (u *Update) dropRender(id string) {
	if i, ok := u.live[id]; ok {
		u.approx -= rawSize(u.entries[i].render)
		u.entries[i] = entry{dropped: true}
		delete(u.live, id)
		u.nRenders--
	}
}

func (u *Update) remove(id string) {
	u.dropRender(id)
	if i, ok := u.removed[id]; ok && i >= 0 {
		return
	}
	u.removed[id] = len(u.removals)
	u.removals = append(u.removals, id)
	u.approx += len(id) + 2
	u.nRemovals++
}

// Merge folds v, whose events all come after u's, into u.
func (u *Update) Merge(v *Update) {
	ev := event.Event{Channel: u.Channel}
	for _, r := range v.Renders() {
		rev := v.revision[r.ID]
		// v removed this post and rendered it again: do the removal here too, so that
		// the render goes to the end, as merging v's events one by one would put it.
		if i, ok := v.removed[r.ID]; ok && i < 0 && u.fresh(r.ID, rev) {
			u.remove(r.ID)
		}
		ev.Renders = []event.Render{r}
		ev.Revision = rev
		u.Add(ev)
	}
	ev.Renders = nil
	for _, id := range v.Removals() {
		ev.Removals = []string{id}
		ev.Revision = v.revision[id]
		u.Add(ev)
	}
	// Add counted one event per operation; count v's events instead.
	u.events += v.events - v.nRenders - v.nRemovals
	if !v.oldestEmit.IsZero() && (u.oldestEmit.IsZero() || v.oldestEmit.Before(u.oldestEmit)) {
		u.oldestEmit = v.oldestEmit
	}
}

// Renders returns the merged renders in the order the browser must apply them.
func (u *Update) Renders() []event.Render {
	out := make([]event.Render, 0, u.nRenders)
	for _, e := range u.entries {
		if !e.dropped {
			out = append(out, e.render)
		}
	}
	return out
}

// Removals returns the merged removals, in the order they were first seen.
func (u *Update) Removals() []string {
	out := make([]string, 0, u.nRemovals)
	for _, id := range u.removals {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

// Revision is the revision merged for post id, zero when none was given.
func (u *Update) Revision(id string) int64 { return u.revision[id] }

// MaxRevision is the highest revision of any merged event.
func (u *Update) MaxRevision() int64 { return u.maxRev }

// Events is the number of events merged.
func (u *Update) Events() int { return u.events }

// Empty reports whether the update would change nothing in a browser.
func (u *Update) Empty() bool { return u.nRenders == 0 && u.nRemovals == 0 }

// Size is the length of AppendJSON's output, computed by walking every render.
func (u *Update) Size() int {
	n := framing
	for _, e := range u.entries {
		if !e.dropped {
			n += event.RenderSize(e.render) + 1
		}
	}
	for _, id := range u.removals {
		if id != "" {
			n += event.StringSize(id) + 1
		}
	}
	if u.nRenders > 0 {
		n--
	}
	if u.nRemovals > 0 {
		n--
	}
	return n
}

// ApproxSize is a cheap lower bound of Size: the raw bytes of the renders and removals
// before JSON escaping. It decides when an update is big enough to flush early.
func (u *Update) ApproxSize() int { return framing + u.approx }

// OldestEmit is the earliest emitted_at of the merged events, zero when none had one.
func (u *Update) OldestEmit() time.Time { return u.oldestEmit }

// AppendJSON appends the update as the browser reads it:
// {"renders":{...},"removals":[...]}, renders in order, removals always present.
func (u *Update) AppendJSON(dst []byte) []byte {
	return appendData(dst, u.Renders(), u.Removals())
}

// Event returns the update as one version 1 event, for dead-lettering and replay.
// Each post keeps its own revision (post_revisions), so that a replay is fenced post
// by post: a letter holding an old render of x and a new render of y must not put x
// back over a newer edit.
func (u *Update) Event() event.Event {
	ev := event.Event{
		Channel:   u.Channel,
		Renders:   u.Renders(),
		Removals:  u.Removals(),
		Revision:  u.maxRev,
		EmittedAt: u.oldestEmit,
	}
	for _, id := range u.Posts() {
		if rev := u.revision[id]; rev != u.maxRev { // 0 too: that post was never fenced
			if ev.PostRevisions == nil {
				ev.PostRevisions = map[string]int64{}
			}
			ev.PostRevisions[id] = rev
		}
	}
	return ev
}

func appendData(dst []byte, renders []event.Render, removals []string) []byte {
	dst = append(dst, `{"renders":`...)
	dst = event.AppendRenders(dst, renders)
	dst = append(dst, `,"removals":`...)
	dst = event.AppendRemovals(dst, removals)
	return append(dst, '}')
}

// Posts returns the ids of every post the update renders or removes, renders first.
func (u *Update) Posts() []string {
	out := make([]string, 0, u.nRenders+u.nRemovals)
	for _, e := range u.entries {
		if !e.dropped {
			out = append(out, e.render.ID)
		}
	}
	for _, id := range u.removals {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

// Drop forgets the render or removal of post id, as if it had never been merged; a
// later render or removal of id is merged as usual.
func (u *Update) Drop(id string) {
	u.dropRender(id)
	if i, ok := u.removed[id]; ok && i >= 0 {
		u.approx -= len(id) + 2
		u.removals[i] = ""
		u.removed[id] = -1
		u.nRemovals--
	}
}
