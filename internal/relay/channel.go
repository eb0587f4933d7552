package relay

import (
	"slices"
	"time"

	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
)

// channel is the loop's state of one channel: the updates merging now, and the job
// being published or waiting to retry. Newer events merge into pending while a job is
// out, so they can never be published before it.
type channel struct {
	name      string
	token     string
	partition int
	epoch     string // the holding of the partition its events came in
	lim       limits

	// pending is the oldest update waiting for a job; later are newer ones, each
	// begun when the one before it was full (a long retry must not grow one update
	// past what can be published or dead-lettered). pendingSources are the sources of
	// pending and then of later, in stream order: one per merged event.
	pending        *merge.Update
	later          []*merge.Update
	pendingSources []Input
	due            time.Time // when pending is to be flushed

	job      *job
	inCall   bool      // the job is with a publisher
	gen      uint64    // invalidates scheduled wake-ups
	keptFrom time.Time // when the held messages were last marked in progress
	// dropped: the loop forgot the channel while its job was with a publisher (its
	// partition was lost or handed over); the call's outcome must not bring it back.
	dropped bool
}

// sources returns every message the channel holds, oldest first.
func (c *channel) sources() []Input {
	var out []Input
	if c.job != nil {
		out = append(out, c.job.sources...)
	}
	return append(out, c.pendingSources...)
}

// limits bound one update, and so one job: LIVE_BATCH_MAX_EVENTS and
// LIVE_BATCH_MAX_BYTES.
type limits struct {
	events, bytes int
}

// full reports whether u takes no more events.
func (l limits) full(u *merge.Update) bool {
	return u.Events() >= l.events || u.ApproxSize() >= l.bytes
}

// fits reports whether v may merge into u without u going over the limits.
func (l limits) fits(u, v *merge.Update) bool {
	return u.Events()+v.Events() <= l.events && u.ApproxSize()+v.ApproxSize() <= l.bytes
}

// add merges in and returns how many of its operations were older than ones merged
// before. An event that would go into a full update begins a new one, after it.
func (c *channel) add(in Input) (stale int) {
	u := c.pending
	if n := len(c.later); n > 0 {
		u = c.later[n-1]
	}
	switch {
	case u == nil:
		c.pending = merge.New(c.name)
		u = c.pending
	case c.lim.full(u):
		u = merge.New(c.name)
		c.later = append(c.later, u)
	}
	stale = u.Add(in.Event)
	// The update now holds the event's content; the source keeps only what acking and
	// dead-lettering need, so that held messages cost memory per distinct post, not
	// per event: memory stays bounded during a provider outage.
	in.Event = event.Event{}
	c.pendingSources = append(c.pendingSources, in)
	return stale
}

// takePending moves the pending update into a new job, or into the waiting job when
// there is one (newer events after older ones, as the merge rule wants) as long as
// the job stays within the limits; what does not fit waits for the next job.
func (c *channel) takePending() {
	if c.pending == nil {
		return
	}
	if c.job == nil {
		u := c.pending
		c.job = &job{ch: c, update: u, sources: c.shift()}
		return
	}
	for c.pending != nil && c.lim.fits(c.job.update, c.pending) {
		c.job.update.Merge(c.pending)
		c.job.sources = append(c.job.sources, c.shift()...)
	}
}

// shift removes the pending update, making the next later one pending, and returns
// its sources.
func (c *channel) shift() []Input {
	n := c.pending.Events()
	src := slices.Clone(c.pendingSources[:n])
	clear(c.pendingSources[:n])
	c.pendingSources = c.pendingSources[n:]
	if len(c.pendingSources) == 0 {
		c.pendingSources = nil
	}
	c.pending = nil
	if len(c.later) > 0 {
		c.pending = c.later[0]
		c.later = c.later[1:]
		if len(c.later) == 0 {
			c.later = nil
		}
	}
	return src
}
