package relay

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/publish"
)

// publisher runs calls until the loop closes the calls channel: dead letters first,
// then one provider request for all the call's messages, then the acks.
func (r *Relay) publisher(ctx context.Context) {
	for c := range r.calls {
		r.runCall(ctx, c)
		r.results <- c
	}
}

func (r *Relay) runCall(ctx context.Context, c *call) {
	var msgs []publish.Message
	var sending []*job
	for _, j := range c.jobs {
		if !r.writeLetters(ctx, j) {
			continue
		}
		if j.deadReason != "" {
			r.ack(j)
			continue
		}
		// The owner check comes last: the fence may read the bucket, and a pause
		// during that read must still stop the publish.
		if !r.checkFence(ctx, j) || !r.checkOwner(j) {
			continue
		}
		if len(j.msgs) == 0 {
			r.ack(j) // nothing to send: every operation was stale or the update empty
			continue
		}
		msgs = append(msgs, j.msgs...)
		sending = append(sending, j)
	}
	if len(msgs) == 0 {
		return
	}
	var deadline time.Time
	for _, j := range sending {
		if !j.deadline.IsZero() && (deadline.IsZero() || j.deadline.Before(deadline)) {
			deadline = j.deadline
		}
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	// The owner is asked once more by the HTTP transport, right before each request
	// goes out: a pause between here and there must not send it late.
	var blocked atomic.Bool
	ctx = publish.WithGate(ctx, func() error {
		for _, j := range sending {
			if err := r.owner.Owns(j.ch.partition, j.ch.epoch); err != nil {
				blocked.Store(true)
				return err
			}
		}
		return nil
	})
	start := time.Now()
	err := r.provider.Publish(ctx, msgs)
	if err != nil && blocked.Load() {
		r.metrics.notOwned.Inc()
		for _, j := range sending {
			j.pubErr, j.fenceErr, j.unsure = err, true, true
		}
		return
	}
	r.metrics.requestSeconds.Observe(time.Since(start).Seconds())
	var partial *publish.PartialError
	if err != nil && (!errors.As(err, &partial) || len(partial.Errs) != len(msgs)) {
		for _, j := range sending {
			j.pubErr = err
		}
		return
	}
	now := time.Now()
	off := 0
	for _, j := range sending {
		n := len(j.msgs)
		if partial != nil {
			// Per-message results: a job succeeded when all its messages did.
			if jerr := firstErr(partial.Errs[off : off+n]); jerr != nil {
				j.pubErr = jerr
				off += n
				continue
			}
		}
		off += n
		r.metrics.messages.Add(float64(n))
		r.metrics.updates.Inc()
		if t := j.update.OldestEmit(); !t.IsZero() {
			r.metrics.latency.Observe(now.Sub(t).Seconds())
		}
		// Before the ack: a message acked is one the fence knows was published.
		r.fence.Record(j.ch.partition, j.update)
		r.ack(j)
	}
}

// checkOwner keeps a job from being published when this worker may no longer hold its
// partition. The job fails like a fence error: retried, without counting against the
// provider; a partition that is gone for good is dropped by the consumer meanwhile.
func (r *Relay) checkOwner(j *job) bool {
	if err := r.owner.Owns(j.ch.partition, j.ch.epoch); err != nil {
		r.metrics.notOwned.Inc()
		j.pubErr, j.fenceErr = &publish.Error{Provider: "partition ownership", Err: err}, true
		j.gone = errors.Is(err, ErrPartitionGone)
		j.unsure = !j.gone
		return false
	}
	return true
}

// checkFence drops the job's operations that are older than what readers already
// have, and re-encodes it when it did. A fence that cannot be read fails the job as a
// retryable error: publishing unchecked could roll a page back.
func (r *Relay) checkFence(ctx context.Context, j *job) bool {
	if j.update.MaxRevision() == 0 {
		return true
	}
	dropped, err := r.fence.Check(ctx, j.ch.partition, j.firstSeq(), j.update)
	if err != nil {
		var w waitError
		j.pubErr, j.fenceErr = &publish.Error{Provider: "revision fence", Err: err}, true
		j.unsure = errors.As(err, &w) && w.Wait()
		return false
	}
	if dropped > 0 {
		r.metrics.stale.Add(float64(dropped))
		r.log.Info("dropped operations older than what readers have", zap.String("channel", j.update.Channel), zap.Int("dropped", dropped))
		j.prepare(r.provider, r.provider.Name())
	}
	return true
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// writeLetters stores the job's dead letters; on failure the job is marked so that the
// loop keeps its messages and tries again. Written letters are not written twice.
func (r *Relay) writeLetters(ctx context.Context, j *job) bool {
	for len(j.letters) > 0 {
		l := j.letters[0].Letter
		if err := r.dead.Write(ctx, l); err != nil {
			j.deadErr = err
			return false
		}
		if j.written == nil {
			j.written = map[string]bool{}
		}
		j.written[j.letters[0].key] = true
		r.log.Warn("dead-lettered", zap.String("channel", l.Channel), zap.String("reason", string(l.Reason)), zap.String("detail", l.Detail), zap.Uint64s("source_seqs", l.SourceSeqs))
		j.letters = j.letters[1:]
	}
	return true
}

// ack acknowledges every source message of a job. An ack that fails (the connection is
// down) leaves the message to be delivered again: a harmless duplicate.
func (r *Relay) ack(j *job) {
	for _, s := range j.sources {
		if err := s.Msg.Ack(); err != nil {
			r.metrics.ackErrors.Inc()
		}
	}
	r.metrics.acked.Add(float64(len(j.sources)))
}
