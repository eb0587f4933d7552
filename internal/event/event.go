// Package event defines the change event that Wagtail Live emits (version 1 of the
// contract in docs/architecture.md): how it is decoded from JSON with the order of its renders
// kept, validated, encoded again, and how its channel maps to a NATS subject token.
package event

import "time"

// Version is the only event version this worker understands.
const Version = 1

// Render is one post's new HTML, as Wagtail Live's process_updates applies it.
type Render struct {
	ID      string
	Show    bool
	Content string
}

// Event is one decoded, validated change event of one channel.
type Event struct {
	Channel string
	// Renders are in the order the CMS wrote them: the browser inserts new posts at
	// the top, so the order carries meaning.
	Renders  []Render
	Removals []string
	// Revision is the page's change clock in microseconds; zero when absent.
	Revision int64
	// EmittedAt is when the CMS emitted the event; zero when absent.
	EmittedAt time.Time
	// PostRevisions, when present, gives some posts a revision of their own instead
	// of Revision. The CMS never sends it: liverelay writes it into the dead letter of
	// a merged update, whose posts carry the revisions of different events, so that a
	// replay is fenced post by post ("post_revisions": {"<post_id>": <revision>}).
	PostRevisions map[string]int64
}

// RevisionOf is the revision of the operation on post id.
func (e Event) RevisionOf(id string) int64 {
	if r, ok := e.PostRevisions[id]; ok {
		return r
	}
	return e.Revision
}
