package dlq

import (
	"math"
	"strconv"

	"github.com/liverelay/liverelay/internal/event"
)

// splitLetter splits a letter whose body is a version 1 event into letters of at
// most room bytes of body each, by posts: renders in order, then removals, so that
// replaying the parts in order does what replaying the whole would. Each part keeps
// the letter's headers and names its place (Live-Dlq-Part), and carries the revision
// of each of its own posts (revision and post_revisions), so that a replay of it is
// fenced post by post. A post too big for a part alone gets a part of its own, larger
// than room: the writer stores that one in chunks. It returns nil when the body is not
// an event or holds a single post.
func splitLetter(l Letter, room int) []Letter {
	ev, err := event.Decode(l.Body)
	if err != nil || len(ev.Renders)+len(ev.Removals) < 2 {
		return nil
	}
	parts := splitEvent(ev, room)
	out := make([]Letter, len(parts))
	for i, p := range parts {
		part := l
		part.Body = event.Append(nil, p)
		out[i] = withPart(part, i+1, len(parts))
	}
	return out
}

// withPart marks l as part i of n.
func withPart(l Letter, i, n int) Letter {
	l.Splittable = false
	l.Part = strconv.Itoa(i) + "/" + strconv.Itoa(n)
	return l
}

// splitEvent cuts ev into events of at most room bytes encoded, each post's revision
// kept. Sizes are counted from above (every post as if it needed a post_revisions
// entry), so a part never exceeds room unless one post alone does.
func splitEvent(ev event.Event, room int) []event.Event {
	base := len(event.Append(nil, event.Event{Channel: ev.Channel, Revision: math.MaxInt64, EmittedAt: ev.EmittedAt})) +
		len(`,"post_revisions":{}`)
	revEntry := func(id string) int { return event.StringSize(id) + len(`:,`) + len("-9223372036854775808") }

	var parts []event.Event
	cur := event.Event{Channel: ev.Channel, EmittedAt: ev.EmittedAt}
	size := base
	flush := func() {
		if len(cur.Renders)+len(cur.Removals) > 0 {
			parts = append(parts, withRevisions(cur, ev))
		}
		cur = event.Event{Channel: ev.Channel, EmittedAt: ev.EmittedAt}
		size = base
	}
	for _, r := range ev.Renders {
		add := event.RenderSize(r) + 1 + revEntry(r.ID)
		if size+add > room {
			flush()
		}
		cur.Renders = append(cur.Renders, r)
		size += add
	}
	for _, id := range ev.Removals {
		add := event.StringSize(id) + 1 + revEntry(id)
		if size+add > room {
			flush()
		}
		cur.Removals = append(cur.Removals, id)
		size += add
	}
	flush()
	return parts
}

// withRevisions gives part the revisions its posts have in whole: the highest as
// revision, the others in post_revisions (0 too: that post was never fenced).
func withRevisions(part, whole event.Event) event.Event {
	ids := make([]string, 0, len(part.Renders)+len(part.Removals))
	for _, r := range part.Renders {
		ids = append(ids, r.ID)
	}
	ids = append(ids, part.Removals...)
	for _, id := range ids {
		part.Revision = max(part.Revision, whole.RevisionOf(id))
	}
	for _, id := range ids {
		if rev := whole.RevisionOf(id); rev != part.Revision {
			if part.PostRevisions == nil {
				part.PostRevisions = map[string]int64{}
			}
			part.PostRevisions[id] = rev
		}
	}
	return part
}
