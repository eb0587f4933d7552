package relay

import (
	"time"

	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
)

// channel is the loop's state of one channel: the update merging now, and the job
// being published or waiting to retry. Newer events merge into pending while a job is
// out, so they can never be published before it.
type channel struct {
	name      string
	token     string
	partition int
	epoch     string // the holding of the partition its events came in

	pending        *merge.Update
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

// add merges in and returns how many of its operations were older than ones merged
// before.
func (c *channel) add(in Input) (stale int) {
	if c.pending == nil {
		c.pending = merge.New(c.name)
	}
	stale = c.pending.Add(in.Event)
	// The update now holds the event's content; the source keeps only what acking and
	// dead-lettering need, so that held messages cost memory per distinct post, not
	// per event (design.md §3.4).
	in.Event = event.Event{}
	c.pendingSources = append(c.pendingSources, in)
	return stale
}

// takePending moves the pending update into a new job, or into the waiting job when
// there is one (newer events after older ones, as the merge rule wants).
func (c *channel) takePending() {
	if c.pending == nil {
		return
	}
	if c.job == nil {
		c.job = &job{ch: c, update: c.pending, sources: c.pendingSources}
	} else {
		c.job.update.Merge(c.pending)
		c.job.sources = append(c.job.sources, c.pendingSources...)
	}
	c.pending, c.pendingSources = nil, nil
}
