package relay

import (
	"context"
	"errors"
	"slices"
	"time"
)

// A partition leaves this worker in one of two ways. Released: the consumer handed it
// to another worker (a rebalance, a shutdown) and asks the relay to publish and ack
// what it holds of it first. Dropped: the consumer learned that the partition already
// belongs to another worker (its pin moved on while this worker was paused or cut
// off), and what the relay holds of it must not be published any more.

type controlKind int

const (
	ctlRelease controlKind = iota // flush the partition now; hand failures back
	ctlGiveUp                     // hand back everything still held of the partition
	ctlDrop                       // forget the partition: another worker has it
)

// control is a request about one partition, served by the loop.
type control struct {
	kind      controlKind
	partition int
	deadline  time.Time     // release: when the hand-over must be over
	done      chan struct{} // closed when served (release: when nothing is held)
}

// errRelayExited is returned when the loop is no longer running.
var errRelayExited = errors.New("relay has stopped")

func (r *Relay) send(ctx context.Context, c control) error {
	select {
	case r.ctl <- c:
		return nil
	case <-r.exited:
		return errRelayExited
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release publishes, at once rather than after the window, every update this worker
// holds of partition p, and returns when their messages are acked. Call it once the
// partition is no longer consumed here. A publish that fails meanwhile is not retried:
// its messages are handed back to JetStream (Nak), oldest first, so that the next
// owner gets them before anything newer. When ctx ends first, everything still held
// is handed back the same way before Release returns ctx's error; a provider call
// made during the hand-over does not outlast ctx's deadline.
//
// It returns how many messages it handed back: they stay pending in JetStream (first
// in line for the next owner), and the caller can tell them from messages it lost.
func (r *Relay) Release(ctx context.Context, p int) (handedBack int, err error) {
	before := r.handedBack(p)
	defer func() { handedBack = r.handedBack(p) - before }()
	done := make(chan struct{})
	deadline, _ := ctx.Deadline()
	if err := r.send(ctx, control{kind: ctlRelease, partition: p, deadline: deadline, done: done}); err != nil {
		if errors.Is(err, errRelayExited) {
			return 0, nil // shutdown already left everything unacked for redelivery
		}
		return 0, err
	}
	var late error
	select {
	case <-done:
	case <-r.exited:
		return 0, nil
	case <-ctx.Done():
		late = ctx.Err()
		give := make(chan struct{})
		if r.send(context.Background(), control{kind: ctlGiveUp, partition: p, done: give}) != nil {
			return 0, late
		}
		select {
		case <-done:
		case <-r.exited:
			return 0, late
		}
	}
	return 0, late
}

// handedBack counts the messages of partition p handed back so far.
func (r *Relay) handedBack(p int) int {
	r.backMu.Lock()
	defer r.backMu.Unlock()
	return r.back[p]
}

func (r *Relay) countHandedBack(p, n int) {
	r.backMu.Lock()
	if r.back == nil {
		r.back = map[int]int{}
	}
	r.back[p] += n
	r.backMu.Unlock()
	r.metrics.handedBack.Add(float64(n))
}

// Drop forgets every update of partition p without publishing or acking it: another
// worker owns the partition now and has its messages delivered again. A job already
// with a publisher finishes, but is not retried.
func (r *Relay) Drop(ctx context.Context, p int) error {
	done := make(chan struct{})
	if err := r.send(ctx, control{kind: ctlDrop, partition: p, done: done}); err != nil {
		if errors.Is(err, errRelayExited) {
			return nil
		}
		return err
	}
	select {
	case <-done:
	case <-r.exited:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// control serves one request in the loop.
func (l *loop) control(c control, now time.Time) {
	p := c.partition
	if c.kind != ctlGiveUp {
		// What the next holder of the partition delivers is new to this worker.
		for ch, t := range l.taken {
			if t.partition == p {
				delete(l.taken, ch)
			}
		}
	}
	switch c.kind {
	case ctlRelease:
		l.releasing[p] = append(l.releasing[p], c.done)
		l.releaseEnd[p] = c.deadline
		for _, ch := range l.channels {
			switch {
			case ch.partition != p || ch.inCall:
			case ch.job != nil:
				// Waiting out a retry: the next owner retries it.
				l.handBack(ch)
			case ch.pending != nil:
				l.sched.at(ch, now)
			}
		}
	case ctlGiveUp:
		l.givingUp[p] = true
		l.unqueue(p)
		for _, ch := range l.channels {
			if ch.partition == p && !ch.inCall {
				l.handBack(ch)
			}
		}
		close(c.done)
	case ctlDrop:
		l.unqueue(p)
		for _, ch := range l.channels {
			if ch.partition == p {
				if ch.inCall {
					ch.dropped = true
				}
				l.forget(ch)
			}
		}
		close(c.done)
	}
	l.checkReleased(p)
}

// unqueue takes the jobs of partition p out of the queues to the publishers.
func (l *loop) unqueue(p int) {
	keep := func(j *job) bool {
		if j.ch.partition != p {
			return true
		}
		j.ch.inCall = false
		return false
	}
	l.ready = slices.DeleteFunc(l.ready, func(j *job) bool { return !keep(j) })
	l.quiet = slices.DeleteFunc(l.quiet, func(j *job) bool { return !keep(j) })
	if l.next != nil {
		l.next.jobs = slices.DeleteFunc(l.next.jobs, func(j *job) bool { return !keep(j) })
		if len(l.next.jobs) == 0 {
			if l.next.probe {
				l.br.release()
			}
			l.next = nil
		}
	}
}

// handBack gives a channel's messages back to JetStream, oldest first, and forgets
// the channel: the partition's next owner publishes them.
func (l *loop) handBack(ch *channel) {
	if l.channels[ch.name] != ch {
		return // forgotten already
	}
	srcs := ch.sources()
	slices.SortFunc(srcs, func(a, b Input) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	for _, s := range srcs {
		_ = s.Msg.Nak()
	}
	l.r.countHandedBack(ch.partition, len(srcs))
	l.forget(ch)
	ch.job, ch.pending, ch.later, ch.pendingSources = nil, nil, nil, nil
}

// forget removes a channel from the loop's state without acking anything.
func (l *loop) forget(ch *channel) {
	ch.gen++ // its scheduled wake-ups are void
	if l.channels[ch.name] != ch {
		return
	}
	delete(l.channels, ch.name)
	l.perPart[ch.partition]--
	if l.perPart[ch.partition] <= 0 {
		delete(l.perPart, ch.partition)
	}
	l.checkReleased(ch.partition)
}

// checkReleased ends the releases of partition p once nothing of it is held.
func (l *loop) checkReleased(p int) {
	if l.perPart[p] > 0 {
		return
	}
	for _, done := range l.releasing[p] {
		close(done)
	}
	delete(l.releasing, p)
	delete(l.releaseEnd, p)
	delete(l.givingUp, p)
}

// leaving reports whether partition p is being handed to another worker.
func (l *loop) leaving(p int) bool {
	_, ok := l.releasing[p]
	return ok || l.givingUp[p]
}
