package fence

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// DefaultFlushTimeout is the flushTimeout the worker gives Run: what is not stored
// within it at shutdown, the next owner of its partitions recovers by catching up from
// the stream (a longer catch-up, never a rollback).
const DefaultFlushTimeout = 5 * time.Second

// Run stores recorded revisions every StoreEvery until ctx is cancelled, then stores
// what is still unstored for up to flushTimeout and returns.
func (f *Fence) Run(ctx context.Context, flushTimeout time.Duration) error {
	tick := time.NewTicker(f.cfg.StoreEvery)
	defer tick.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		select {
		case <-tick.C:
			f.store(ctx)
		case <-sweep.C:
			f.evict()
		case <-ctx.Done():
			flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
			defer cancel()
			for !f.store(flush) && flush.Err() == nil {
				wait(flush, retryPause)
			}
			if n := f.Pending(); n > 0 {
				f.log.Warn("revisions not stored at shutdown; the next owner of their partitions catches up from the stream", zap.Int("channels", n))
			}
			return nil
		}
	}
}

// retryPause is the wait between rounds of writes that failed at shutdown.
const retryPause = 500 * time.Millisecond

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// roundTimeout bounds one round of writes: a write whose reply is lost (a leader that
// died after storing it) must not hold the next round.
const roundTimeout = 15 * time.Second

// store runs one round: catch-ups not yet done, the ack floor of every partition held and caught up (of
// only those named, if any), then
// every unstored channel, then — only if all of those were stored — each partition's
// mark at its floor. A message acked before the floor was read was recorded before its
// ack, so its revisions are among the writes of this round. It reports whether every
// write succeeded.
func (f *Fence) store(ctx context.Context, only ...int) bool {
	f.round.Lock()
	defer f.round.Unlock()
	ctx, cancel := context.WithTimeout(ctx, roundTimeout)
	defer cancel()
	type floor struct {
		partition int
		h         *holding
		acked     uint64
	}
	var floors []floor
	// A partition whose updates carry no revision is never checked: catch it up here,
	// so that what it notes of received messages stays bounded and its mark moves.
	f.mu.Lock()
	var behind []int
	for p, h := range f.parts {
		if !h.caughtUp && (len(only) == 0 || slices.Contains(only, p)) {
			behind = append(behind, p)
		}
	}
	f.mu.Unlock()
	for _, p := range behind {
		if err := f.catchUp(ctx, p); err != nil {
			f.log.Debug("catch up a partition; will try again next round", zap.Int("partition", p), zap.Error(err))
		}
	}
	f.mu.Lock()
	held := make(map[int]*holding, len(f.parts))
	for p, h := range f.parts {
		if h.caughtUp && (len(only) == 0 || slices.Contains(only, p)) {
			held[p] = h
		}
	}
	f.mu.Unlock()
	for p, h := range held {
		acked, _, err := f.history.Progress(ctx, p)
		if err != nil {
			f.log.Debug("read a partition's ack floor; its mark waits for the next round", zap.Int("partition", p), zap.Error(err))
			continue
		}
		f.mu.Lock()
		if len(h.backlog) > 0 && (acked >= h.delivered || time.Since(h.caughtAt) >= f.cfg.Redelivery) {
			f.settleAll(p, h)
		}
		// A mark past unsettled deliveries would hide them from the next owner.
		behind := acked > h.mark && len(h.backlog) == 0
		f.mu.Unlock()
		if behind {
			floors = append(floors, floor{p, h, acked})
		}
	}
	if !f.writeDirty(ctx) {
		return false
	}
	for _, fl := range floors {
		f.advanceMark(ctx, fl.partition, fl.h, fl.acked)
	}
	return true
}

// advanceMark writes partition p's mark if this worker still holds it and nobody else
// wrote the mark since: another worker's catch-up means the partition is its now.
func (f *Fence) advanceMark(ctx context.Context, p int, h *holding, to uint64) {
	f.mu.Lock()
	current := f.parts[p] == h && h.caughtUp
	seq := h.markSeq
	f.mu.Unlock()
	if !current {
		return
	}
	ack, err := f.js.Publish(ctx, f.pre+MarkKey(p), strconv.AppendUint(nil, to, 10), jetstream.WithExpectLastSequencePerSubject(seq))
	if err != nil {
		if isConflict(err) {
			// Caught up again before the next check: cheap, and right whoever wrote.
			f.mu.Lock()
			h.caughtUp = false
			f.mu.Unlock()
			f.log.Info("another worker wrote a partition's stored mark; catching up again before its next publish", zap.Int("partition", p))
			return
		}
		f.log.Warn("could not store a partition's mark; will retry", zap.Int("partition", p), zap.Error(err))
		return
	}
	f.metrics.writes.Inc()
	f.mu.Lock()
	h.mark, h.markSeq = to, ack.Sequence
	f.mu.Unlock()
}

// writeDirty writes every unstored channel once, all at once (pipelined, so that the
// server can share its fsyncs among them); it reports whether all writes succeeded.
// f.round is held.
func (f *Fence) writeDirty(ctx context.Context) bool {
	f.mu.Lock()
	keys := make([]string, 0, len(f.dirty))
	for k := range f.dirty {
		keys = append(keys, k)
	}
	clear(f.dirty)
	since := f.dirtySince
	f.mu.Unlock()
	// Keys that fail go back with their original age, so that the lag keeps growing.
	defer func() {
		f.mu.Lock()
		if len(f.dirty) > 0 && since.Before(f.dirtySince) && !since.IsZero() {
			f.dirtySince = since
		}
		f.mu.Unlock()
	}()

	type write struct {
		key string
		e   *entry
		pa  jetstream.PubAckFuture
	}
	writes := make([]write, 0, len(keys))
	ok := true
	for _, key := range keys {
		f.mu.Lock()
		e := f.cache[key]
		known, partition := e.known, e.partition
		f.mu.Unlock()
		if !known {
			if err := f.refresh(ctx, partition, key); err != nil {
				f.retryLater(key, err)
				ok = false
				continue
			}
		}
		f.mu.Lock()
		val, last := encode(e.revs), e.kvRev
		f.mu.Unlock()
		pa, err := f.js.PublishMsgAsync(&nats.Msg{Subject: f.pre + key, Data: val}, jetstream.WithExpectLastSequencePerSubject(last))
		if err != nil {
			f.retryLater(key, err)
			ok = false
			continue
		}
		writes = append(writes, write{key: key, e: e, pa: pa})
	}
	for _, w := range writes {
		var err error
		select {
		case ack := <-w.pa.Ok():
			f.metrics.writes.Inc()
			f.mu.Lock()
			w.e.kvRev, w.e.readAt = max(w.e.kvRev, ack.Sequence), time.Now()
			f.mu.Unlock()
			continue
		case err = <-w.pa.Err():
		case <-ctx.Done():
			err = ctx.Err()
		}
		ok = false
		if isConflict(err) {
			// Another worker wrote in between: merge its revisions, write next round.
			f.mu.Lock()
			partition := w.e.partition
			f.mu.Unlock()
			if rerr := f.refresh(ctx, partition, w.key); rerr != nil {
				err = rerr
			}
		}
		if !isConflict(err) || ctx.Err() != nil {
			f.retryLater(w.key, err)
		} else {
			f.markDirty(w.key)
		}
	}
	return ok
}

func (f *Fence) retryLater(key string, err error) {
	f.log.Warn("could not store published revisions; will retry", zap.Error(err))
	f.markDirty(key)
}

// markDirty queues key for the next round of writes.
func (f *Fence) markDirty(key string) {
	f.mu.Lock()
	f.markDirtyLocked(key)
	f.mu.Unlock()
}
