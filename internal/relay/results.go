package relay

import (
	"time"

	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/retry"
)

// What the loop does with a call a publisher handed back: judge the provider, then
// ack, retry, try alone or dead-letter each job, and schedule what comes next.

// finish takes a call back from a publisher.
func (l *loop) finish(c *call, now time.Time, draining bool) {
	if l.expired {
		// Past the shutdown deadline nothing new starts: what was published is acked,
		// the rest stays unacked for redelivery.
		for _, j := range c.jobs {
			j.ch.inCall = false
			l.abandon(j.ch)
		}
		return
	}
	l.judge(c, now)
	shared := len(c.jobs) > 1
	for _, j := range c.jobs {
		ch := j.ch
		ch.inCall = false
		if ch.dropped {
			continue // its partition is another worker's now: published or not, it is not ours to go on with
		}
		switch {
		case j.gone:
			// Not published: the partition is another worker's, which has these
			// messages delivered again.
			l.abandon(ch)
			continue
		case j.unsure:
			// Not published, and not the provider's fault: try again shortly, without
			// spending a retry attempt.
			j.pubErr, j.fenceErr, j.unsure = nil, false, false
			l.retryLater(j, now, draining, ownerWait)
			continue
		}
		switch {
		case j.deadErr != nil:
			// The dead-letter stream could not store it: keep everything, try again.
			l.r.log.Error("dead-letter write failed; will retry", zap.String("channel", ch.name), zap.Error(j.deadErr))
			j.deadErr = nil
			l.retryLater(j, now, draining, l.r.cfg.Retry.Max)
		case j.pubErr != nil:
			l.failed(j, shared, now, draining)
		default:
			// Published (or dead-lettered) and acked.
			ch.job = nil
			l.afterJob(ch, now, draining)
		}
		if l.givingUp[ch.partition] && !ch.inCall {
			l.handBack(ch)
		}
	}
}

// judge tells the breaker how the provider did: a call that reached the provider and
// was accepted (even in part) closes it, one that failed retryably counts against it.
func (l *loop) judge(c *call, now time.Time) {
	if !c.gated {
		return // the breaker did not let this call out: it says nothing of the provider
	}
	var retryable error
	sent, accepted := false, false
	for _, j := range c.jobs {
		switch {
		case j.deadErr != nil || j.fenceErr || (len(j.msgs) == 0 && j.pubErr == nil):
			// nothing was sent to the provider for this job
		case j.pubErr == nil:
			sent, accepted = true, true
		default:
			sent = true
			if retry.Classify(j.pubErr).Retryable {
				retryable = j.pubErr
			}
		}
	}
	if l.br.open && !c.probe {
		return // a call sent before the breaker opened: the probe decides now
	}
	switch {
	case accepted:
		l.br.success()
	case sent && retryable != nil:
		if l.br.failure(now, retry.Classify(retryable).RetryAfter) {
			l.r.metrics.breakerOpens.Inc()
			l.r.log.Warn("provider failing for every channel: holding all calls", zap.Time("until", l.br.until), zap.Error(retryable))
		}
	case c.probe:
		l.br.release() // the probe sent nothing: let another call probe
	}
	if l.br.open {
		l.r.breaker.Set(1)
	} else {
		l.r.breaker.Set(0)
	}
}

// failed decides what a failed publish leads to: a retry, a solo try, or the DLQ.
func (l *loop) failed(j *job, shared bool, now time.Time, draining bool) {
	err := j.pubErr
	j.pubErr, j.fenceErr = nil, false
	if j.firstFail.IsZero() {
		j.firstFail = now
	}
	j.lastFail, j.lastErr = now, err
	d := l.r.cfg.Retry.Next(err, j.attempts+1, j.firstFail, now)
	if !d.Retry && d.Why == retry.Permanent && shared && !l.leaving(j.ch.partition) {
		// One bad message can fail a whole shared request: try each job alone before
		// blaming it.
		j.solo = true
		l.dispatch(j)
		return
	}
	j.attempts++
	l.r.metrics.publishErrors.WithLabelValues(errorClass(d)).Inc()
	switch {
	case d.Retry:
		l.r.log.Warn("publish failed; will retry", zap.String("channel", j.ch.name), zap.Int("attempt", j.attempts), zap.Duration("wait", d.Wait), zap.Error(err))
		l.retryLater(j, now, draining, d.Wait)
	default:
		reason := dlq.ReasonPermanent
		if d.Why == retry.Exhausted {
			reason = dlq.ReasonExhausted
		}
		l.r.log.Error("publish failed for good; dead-lettering the update", zap.String("channel", j.ch.name), zap.String("reason", string(reason)), zap.Int("attempts", j.attempts), zap.Error(err))
		j.deadReason, j.deadDetail = reason, err.Error()
		j.solo = true
		l.dispatch(j)
	}
}

func errorClass(d retry.Decision) string {
	if d.Retry {
		return "retryable"
	}
	return string(d.Why)
}

// retryLater parks a job until its wait is over; while shutting down, it is left
// unacked instead.
func (l *loop) retryLater(j *job, now time.Time, draining bool, wait time.Duration) {
	ch := j.ch
	switch {
	case draining:
		l.abandon(ch)
	case l.leaving(ch.partition):
		// Handed over: the next owner retries it, before anything newer.
		l.handBack(ch)
	default:
		l.sched.at(ch, now.Add(wait))
	}
}

// afterJob schedules what comes after a channel's job: its pending update, or nothing.
func (l *loop) afterJob(ch *channel, now time.Time, draining bool) {
	switch {
	case ch.pending == nil:
		l.forget(ch)
	case draining || l.leaving(ch.partition) || !ch.due.After(now):
		l.sched.at(ch, now)
	default:
		l.sched.at(ch, ch.due)
	}
}
