package fence

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
)

// catchUp reads what a previous owner of the partition may have published without
// storing it, before this worker publishes any of it.
//
// The partition's mark M says that everything published from messages up to stream
// sequence M is stored. What a previous owner published past M came from messages
// delivered to it, so at most up to D, the last delivered sequence (no message past D
// reached anyone before this worker pulls). catchUp reads the events in (M, D] into
// the partition's backlog; settle takes them into the cache channel by channel. A
// partition without a mark was last held by a worker that stored before acking, so its
// ack floor stands for M.
//
// It writes the mark again, unchanged: a previous owner still running (paused, cut
// off) then fails its next compare-and-set write of the mark and stops writing it.
func (f *Fence) catchUp(ctx context.Context, partition int) error {
	f.mu.Lock()
	h := f.parts[partition]
	if h == nil {
		// Checked without Acquire (the consumer calls it first): catch up all the same.
		h = &holding{received: map[uint64]struct{}{}}
		f.parts[partition] = h
	}
	done := h.caughtUp
	f.mu.Unlock()
	if done {
		return nil
	}
	h.catching.Lock()
	defer h.catching.Unlock()
	f.mu.Lock()
	done = h.caughtUp
	failedAt, failed := h.failedAt, h.failed
	f.mu.Unlock()
	switch {
	case done:
		return nil
	case time.Since(failedAt) < catchUpRetry:
		return failed // the updates waiting behind it need not each try again now
	}
	if err := f.catchUpLocked(ctx, partition, h); err != nil {
		err = catchUpError{err}
		f.mu.Lock()
		h.failedAt, h.failed = time.Now(), err
		f.mu.Unlock()
		return err
	}
	return nil
}

// catchUpRetry is how soon a catch-up that failed is tried again.
const catchUpRetry = time.Second

// catchUpError is a catch-up that could not read what it needs (the stream, the
// consumer or the bucket did not answer): the update waits, without spending a retry
// attempt (nothing was wrong with it or the provider), and the catch-up is tried again.
type catchUpError struct{ err error }

func (e catchUpError) Error() string { return e.err.Error() }
func (e catchUpError) Unwrap() error { return e.err }

// Wait marks the error as a reason to wait, not a failure.
func (catchUpError) Wait() bool { return true }

// catchUpLocked reads the partition's mark, progress and backlog; h.catching is held.
func (f *Fence) catchUpLocked(ctx context.Context, partition int, h *holding) error {
	start := time.Now()
	mark, markSeq, found, err := f.readMark(ctx, partition)
	if err != nil {
		return err
	}
	acked, delivered, err := f.history.Progress(ctx, partition)
	if err != nil {
		return fmt.Errorf("catch up partition %d: %w", partition, err)
	}
	if !found {
		mark = acked
	}
	backlog := map[string][]delivery{}
	read := 0
	if delivered > mark {
		err := f.history.Events(ctx, partition, mark, delivered, func(seq uint64, data []byte) {
			read++
			ev, err := event.Decode(data)
			if err != nil {
				return // dead-lettered, never published
			}
			u := merge.New(ev.Channel)
			u.Add(ev)
			if u.MaxRevision() > 0 {
				key := Key(ev.Channel)
				d := delivery{seq: seq}
				for _, post := range u.Posts() {
					if rev := u.Revision(post); rev != 0 {
						d.revs = append(d.revs, postRevision{post, rev})
					}
				}
				backlog[key] = append(backlog[key], d)
			}
		})
		if err != nil {
			return fmt.Errorf("catch up partition %d: read events %d to %d: %w", partition, mark+1, delivered, err)
		}
	}
	mark, seq, err := f.writeMark(ctx, partition, mark, markSeq)
	if err != nil {
		return fmt.Errorf("catch up partition %d: %w", partition, err)
	}
	f.mu.Lock()
	h.mark, h.markSeq, h.delivered, h.backlog, h.caughtUp, h.caughtAt = mark, seq, max(delivered, mark), backlog, true, time.Now()
	for s := range h.received {
		if s > h.delivered {
			delete(h.received, s)
		}
	}
	channels := len(backlog)
	f.pruneLocked(h)
	f.mu.Unlock()
	f.metrics.catchUps.Inc()
	f.metrics.caughtUpEvents.Add(float64(read))
	f.log.Info("caught up on a partition's deliveries", zap.Int("partition", partition),
		zap.Uint64("from", mark), zap.Uint64("to", delivered), zap.Int("events", read), zap.Int("channels", channels),
		zap.Duration("took", time.Since(start).Round(time.Millisecond)))
	return nil
}

// ErrUnsettled says that an update must wait: an event its previous owner was
// delivered, newer for one of its posts, may have been published (acked) or may come
// to this worker again, and which is not known yet. It is known as soon as the event,
// or a newer message of the partition, comes, or Redelivery after the catch-up.
var ErrUnsettled = unsettled{}

type unsettled struct{}

func (unsettled) Error() string {
	return "waiting for the previous owner's deliveries to come again: an event newer for a post may already be on readers' pages"
}

// Wait marks the error as a reason to wait, not a failure.
func (unsettled) Wait() bool { return true }

// settle takes a channel's backlog into the cache before its check, event by event.
// An event that came to this worker again was not acked: it is this worker's to
// publish, in order, and is left out (taking it as published would drop the first
// render of a post that an edit in the backlog follows, and move the post on the
// page). One that did not come again though an older message of the channel or a newer
// one of the partition did — the consumer hands a take-over's redeliveries on in
// stream order — was acked: its
// content is published (or was deliberately not) and it is taken into the cache. One
// that may still come is unsettled: while it is, an update it is newer than for a post
// waits (ErrUnsettled). first is the oldest source of u; 0 settles everything, to be
// safe.
func (f *Fence) settle(partition int, key string, first uint64, u *merge.Update) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.parts[partition]
	if h == nil || len(h.backlog[key]) == 0 {
		return nil
	}
	expired := time.Since(h.caughtAt) >= f.cfg.Redelivery
	var open []delivery
	for _, d := range h.backlog[key] {
		if _, ok := h.received[d.seq]; ok {
			continue
		}
		if first == 0 || expired || d.seq < first || h.highest > d.seq {
			f.noteDeliveryLocked(partition, key, d)
			continue
		}
		open = append(open, d)
	}
	if len(open) == 0 {
		delete(h.backlog, key)
		f.pruneLocked(h)
		return nil
	}
	h.backlog[key] = open
	for _, d := range open {
		for _, post := range u.Posts() {
			if rev := u.Revision(post); rev != 0 && rev < d.revisionOf(post) {
				return ErrUnsettled
			}
		}
	}
	return nil
}

// settleAll takes what is left of a partition's backlog into the cache, once all of
// it is acked (the ack floor passed it) or Redelivery is over; f.mu is held.
func (f *Fence) settleAll(partition int, h *holding) {
	for key, ds := range h.backlog {
		for _, d := range ds {
			if _, ok := h.received[d.seq]; !ok {
				f.noteDeliveryLocked(partition, key, d)
			}
		}
		delete(h.backlog, key)
	}
	f.pruneLocked(h)
}

// pruneLocked drops what settling needs once the backlog is empty; f.mu is held.
func (f *Fence) pruneLocked(h *holding) {
	if len(h.backlog) == 0 {
		h.backlog, h.received = nil, nil
	}
}

// writeMark writes partition's mark to, compare-and-set on the sequence last read. A
// write in between (a worker that stored its own progress, or caught up too) is read
// and written over with the higher of the two: both are true.
func (f *Fence) writeMark(ctx context.Context, partition int, to, seq uint64) (written, newSeq uint64, err error) {
	for attempt := 0; ; attempt++ {
		ack, err := f.js.Publish(ctx, f.pre+MarkKey(partition), strconv.AppendUint(nil, to, 10), jetstream.WithExpectLastSequencePerSubject(seq))
		if err == nil {
			f.metrics.writes.Inc()
			return to, ack.Sequence, nil
		}
		if !isConflict(err) || attempt == 3 {
			return 0, 0, fmt.Errorf("store the partition's mark: %w", err)
		}
		var theirs uint64
		if theirs, seq, _, err = f.readMark(ctx, partition); err != nil {
			return 0, 0, err
		}
		to = max(to, theirs)
	}
}

// readMark reads a partition's mark and its sequence in the bucket (a delete marker's
// too: a compare-and-set write must name it).
func (f *Fence) readMark(ctx context.Context, partition int) (mark, seq uint64, found bool, err error) {
	m, err := f.stream.GetLastMsgForSubject(ctx, f.pre+MarkKey(partition))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("read partition %d's stored mark: %w", partition, err)
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return 0, m.Sequence, false, nil
	}
	mark, err = strconv.ParseUint(string(m.Data), 10, 64)
	if err != nil {
		return 0, 0, false, fmt.Errorf("partition %d's stored mark %q: %w", partition, m.Data, err)
	}
	return mark, m.Sequence, true, nil
}
