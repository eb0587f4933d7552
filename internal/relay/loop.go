package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/retry"
	"go.uber.org/zap"
)

// ownerWait is how long a job waits when the worker is not sure it still holds the
// job's partition (it is checking with the server).
const ownerWait = 250 * time.Millisecond

// breakerThreshold is how many calls in a row must fail retryably before every
// channel holds its calls.
const breakerThreshold = 5

// loop owns every channel's state; only its goroutine touches it.
type loop struct {
	r        *Relay
	channels map[string]*channel
	sched    schedule
	ready    []*job // jobs to hand to publishers, oldest first
	quiet    []*job // jobs that need no provider request (dead letters, nothing to send)
	out      int    // calls with publishers
	next     *call  // the call offered to publishers now
	br       *breaker
	expired  bool // the shutdown deadline passed: calls coming back only end their channel

	perPart map[int]int // channels held per partition
	// taken holds the stream sequences taken lately per channel (and its partition). A
	// message taken before is a repeat (a consumer leader that died before its last
	// deliveries were replicated delivers them again): its content must not be merged
	// again after newer content; it is only acked along. An older message never taken
	// (redelivered late after a crash) is merged as usual: dropping it would lose it.
	taken      map[string]*takenSeqs
	releasing  map[int][]chan struct{} // partitions being handed over, and who waits
	releaseEnd map[int]time.Time       // when their hand-over must be over
	givingUp   map[int]bool            // partitions whose hand-over ran out of time
}

func newLoop(r *Relay) *loop {
	return &loop{
		r: r, channels: map[string]*channel{}, br: newBreaker(breakerThreshold, r.cfg.Retry.Initial, r.cfg.Retry.Max),
		perPart: map[int]int{}, taken: map[string]*takenSeqs{}, releasing: map[int][]chan struct{}{}, releaseEnd: map[int]time.Time{}, givingUp: map[int]bool{},
	}
}

func (l *loop) run(ctx context.Context, cancelPublish context.CancelFunc) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	keepAlive := time.NewTicker(l.r.cfg.KeepAlive)
	defer keepAlive.Stop()

	in := l.r.in
	stopping := ctx.Done()
	var deadline <-chan time.Time // shutdown deadline
	draining := false
	for {
		now := l.r.now()
		for {
			c, ok := l.sched.due(now)
			if !ok {
				break
			}
			l.wake(c, now, draining)
		}
		if draining && l.out == 0 && len(l.ready) == 0 && len(l.quiet) == 0 && l.next == nil && l.holding() == 0 {
			return nil
		}
		at, ok := l.sched.next()
		if until, open := l.br.waitUntil(); open && len(l.ready) > 0 && (!ok || until.Before(at)) {
			at, ok = until, true
		}
		if ok {
			resetTimer(timer, at.Sub(now))
		}
		var calls chan *call
		switch {
		case l.next != nil:
		case len(l.quiet) > 0:
			// Dead letters and acks need no provider: the breaker does not hold them.
			l.next = &call{jobs: []*job{l.quiet[0]}}
			l.quiet = l.quiet[1:]
		case len(l.ready) > 0:
			ok, probe := l.br.allow(now)
			if !ok {
				break
			}
			if l.next = l.nextCall(now); l.next == nil {
				if probe {
					l.br.release() // every held job had run out of time: no probe went
				}
			} else {
				l.next.gated, l.next.probe = true, probe
			}
		}
		if l.next != nil {
			calls = l.r.calls
		}
		l.r.metrics.channels.Set(float64(len(l.channels)))

		select {
		case msg := <-in:
			l.receive(msg, l.r.now())
		case c := <-l.r.ctl:
			l.control(c, l.r.now())
		case calls <- l.next:
			l.out++
			l.next = nil
		case c := <-l.r.results:
			l.out--
			l.finish(c, l.r.now(), draining)
		case <-timer.C:
		case <-keepAlive.C:
			l.keepAlive(l.r.now())
		case <-stopping:
			// Phase one: take no more events, flush everything held now.
			stopping, in, draining = nil, nil, true
			close(l.r.stopped)
			l.r.log.Info("relay stopping: flushing held updates", zap.Int("channels", len(l.channels)), zap.Duration("timeout", l.r.cfg.ShutdownTimeout))
			deadline = time.After(l.r.cfg.ShutdownTimeout)
			now = l.r.now()
			for _, c := range l.channels {
				if c.job == nil && c.pending != nil {
					l.sched.at(c, now)
				}
			}
		case <-deadline:
			// Phase two: give up on what is left; it stays unacked and JetStream
			// delivers it again.
			l.r.log.Warn("shutdown timeout reached: leaving the rest unacked for redelivery", zap.Int("messages", l.holding()))
			cancelPublish()
			deadline = nil
			if l.next != nil {
				if l.next.probe {
					l.br.release() // the probe never went out
				}
				l.ready = append(l.next.jobs, l.ready...)
			}
			for _, j := range append(l.ready, l.quiet...) {
				j.ch.inCall = false
			}
			l.ready, l.quiet, l.next = nil, nil, nil
			l.expired = true
			l.dropAll()
		}
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	if d < 0 {
		d = 0
	}
	t.Reset(d)
}

// takenSeqs remembers the last stream sequences taken of a channel.
type takenSeqs struct {
	partition int
	seqs      [64]uint64
	next      int
}

// seen reports whether seq was taken lately.
func (t *takenSeqs) seen(seq uint64) bool {
	for _, s := range t.seqs {
		if s == seq {
			return true
		}
	}
	return false
}

func (t *takenSeqs) add(seq uint64) {
	t.seqs[t.next] = seq
	t.next = (t.next + 1) % len(t.seqs)
}

// receive merges one event into its channel's pending update.
func (l *loop) receive(in Input, now time.Time) {
	l.r.metrics.events.Inc()
	t := l.taken[in.Event.Channel]
	if t == nil {
		t = &takenSeqs{partition: in.Partition}
		l.taken[in.Event.Channel] = t
	}
	if in.Seq != 0 && t.seen(in.Seq) {
		// A repeat: acked with the channel's next update, its content not merged.
		l.r.metrics.repeats.Inc()
		in.Event = event.Event{Channel: in.Event.Channel}
	} else {
		t.add(in.Seq)
	}
	c := l.channels[in.Event.Channel]
	if c == nil {
		c = &channel{name: in.Event.Channel, token: in.Token, partition: in.Partition, epoch: in.Epoch, keptFrom: now,
			lim: limits{events: l.r.cfg.MaxEvents, bytes: l.r.cfg.MaxBytes}}
		l.channels[c.name] = c
		l.perPart[c.partition]++
	}
	first := c.pending == nil
	if stale := c.add(in); stale > 0 {
		l.r.metrics.stale.Add(float64(stale))
	}
	if first {
		c.due = now.Add(l.r.cfg.Window)
	}
	full := c.pending.Events() >= l.r.cfg.MaxEvents || c.pending.ApproxSize() >= l.r.cfg.MaxBytes
	if full || l.leaving(c.partition) {
		full = true
		c.due = now
	}
	// A channel with a job out waits for it; its pending update goes next.
	if c.job == nil && (first || full) {
		l.sched.at(c, c.due)
	}
}

// wake handles a channel whose flush or retry time has come.
func (l *loop) wake(c *channel, now time.Time, draining bool) {
	switch {
	case c.job != nil && c.inCall:
		// A stale wake-up: the job is out; finish reschedules.
	case c.job != nil:
		// The retry wait is over: newer events join the job, then it goes again —
		// unless the job is on its way to the dead-letter stream: newer events must
		// not go down with it; they wait for their own turn.
		if c.job.deadReason == "" {
			c.takePending()
		}
		l.dispatch(c.job)
	case c.pending != nil:
		c.takePending()
		l.dispatch(c.job)
	}
}

// dispatch prepares a job and queues it for the publishers.
func (l *loop) dispatch(j *job) {
	j.deadline = l.releaseEnd[j.ch.partition]
	j.prepare(l.r.provider, l.r.provider.Name())
	j.ch.inCall = true
	if j.deadReason != "" || len(j.msgs) == 0 {
		l.quiet = append(l.quiet, j)
		return
	}
	l.ready = append(l.ready, j)
}

// expire dead-letters a held job whose retries ran out of time (LIVE_RETRY_MAX_ELAPSED)
// while the breaker kept it back, instead of sending it late; it reports whether it did.
func (l *loop) expire(j *job, now time.Time) bool {
	max := l.r.cfg.Retry.MaxElapsed
	if j.firstFail.IsZero() || max <= 0 || now.Sub(j.firstFail) < max {
		return false
	}
	l.r.metrics.publishErrors.WithLabelValues(string(retry.Exhausted)).Inc()
	j.deadReason = dlq.ReasonExhausted
	j.deadDetail = fmt.Sprintf("retried for %v (LIVE_RETRY_MAX_ELAPSED), last error: %v", now.Sub(j.firstFail).Round(time.Millisecond), j.lastErr)
	j.solo = true
	l.dispatch(j)
	return true
}

// nextCall groups ready jobs into one provider call of at most MaxBatch messages.
// Jobs that must go alone (dead letters only, or after a failed shared call) go alone.
func (l *loop) nextCall(now time.Time) *call {
	for len(l.ready) > 0 && l.expire(l.ready[0], now) {
		l.ready = l.ready[1:]
	}
	if len(l.ready) == 0 {
		l.ready = nil
		return nil
	}
	max := l.r.provider.Limits().MaxBatch
	first := l.ready[0]
	c := &call{jobs: []*job{first}}
	n := len(first.msgs)
	i := 1
	if !first.solo && n < max {
		for ; i < len(l.ready); i++ {
			j := l.ready[i]
			if j.solo || n+len(j.msgs) > max || !j.firstFail.IsZero() && l.r.cfg.Retry.MaxElapsed > 0 && now.Sub(j.firstFail) >= l.r.cfg.Retry.MaxElapsed {
				break // an overdue job is expired when it reaches the head
			}
			c.jobs = append(c.jobs, j)
			n += len(j.msgs)
		}
	}
	l.ready = l.ready[i:]
	if len(l.ready) == 0 {
		l.ready = nil // let the backing array go
	}
	return c
}

// abandon forgets a channel's messages without acking them: JetStream delivers them
// again (to this worker after a restart, or to another).
func (l *loop) abandon(ch *channel) {
	l.forget(ch)
	ch.job, ch.pending, ch.later, ch.pendingSources = nil, nil, nil, nil
}

// dropAll abandons every channel that has nothing with a publisher.
func (l *loop) dropAll() {
	for _, ch := range l.channels {
		if !ch.inCall {
			l.abandon(ch)
		}
	}
}

// holding counts the source messages the loop holds unacked.
func (l *loop) holding() int {
	n := 0
	for _, ch := range l.channels {
		n += len(ch.pendingSources)
		if ch.job != nil {
			n += len(ch.job.sources)
		}
	}
	return n
}

// keepAlive tells JetStream that held messages are still being worked on, so that a
// long retry does not make them redeliver: no redelivery storm.
func (l *loop) keepAlive(now time.Time) {
	marks := 0
	for _, ch := range l.channels {
		if now.Sub(ch.keptFrom) < l.r.cfg.KeepAlive {
			continue
		}
		ch.keptFrom = now
		for _, s := range ch.pendingSources {
			_ = s.Msg.InProgress()
		}
		marks += len(ch.pendingSources)
		if ch.job != nil {
			for _, s := range ch.job.sources {
				_ = s.Msg.InProgress()
			}
			marks += len(ch.job.sources)
		}
	}
	l.r.metrics.inProgress.Add(float64(marks))
}
