package consumer

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"
)

// How a pin tells whose messages these are: the first pin of a partition, a pin the
// server gave again, a refusal, a loss.

// notePin records the pin and delivery sequence a message came with and returns the
// epoch to tag it with.
//
// The server gives a new pin id when it pins the partition again: after it restarted
// or its consumer leader changed (this worker held the partition throughout, and goes
// on with what it holds), or after this worker lost the pin (paused or cut off past
// the pinned TTL: what it held was delivered again to another worker, and is
// dropped). What tells them apart: a worker in doubt (the lease) may have lost it, and
// a gap in the delivery sequence means another client received messages meanwhile.
func (c *Consumer) notePin(ctx context.Context, part *partition, pin string, meta *jetstream.MsgMetadata, log *zap.Logger) (epoch string, ok bool) {
	part.turn.Lock()
	defer part.turn.Unlock()
	seq := meta.Sequence.Consumer
	if pin != "" && pin == part.lostPin || !part.resumeAt.IsZero() {
		// Delivered before the loss and read only now (another worker has it again),
		// or while pulling is paused: not ours to handle now.
		return "", false
	}
	continuous := part.lastSeq == 0 || seq == 0 || seq == part.lastSeq+1 || seq <= part.lastSeq
	switch {
	case pin == "" || pin == part.pin && !part.refused:
	case part.pin == "" && !part.refused:
		info := c.consumerInfo(ctx, part)
		if c.contested(ctx, part, meta, info, log) {
			return "", false
		}
		c.metrics.handovers.WithLabelValues("acquired").Inc()
		log.Info("partition acquired", zap.Duration("waited", time.Since(part.since).Round(time.Millisecond)))
		if c.cfg.Acquired != nil {
			c.cfg.Acquired(part.n)
		}
		// What the previous owner left unacked comes first, but not in stream order:
		// gather it all, then hand it on sorted (gather.go).
		switch {
		case info == nil:
			c.startGathering(ctx, part, unknownCount, log)
		case info.NumAckPending > 1:
			c.startGathering(ctx, part, info.NumAckPending, log)
		}
	case c.own.lease.check(time.Now()) != nil || !continuous:
		// Deliveries this worker never saw (lost in flight with a dying leader, or
		// made to another client) come again only when due: pulling on now would put
		// newer messages before them. Drop what is held and pause until all of it is
		// due, then it comes again in order.
		c.lostLocked(ctx, part, part.pin, "it came back under a new pin after deliveries this worker never saw", log)
		c.pause(ctx, part, log)
		return "", false
	default:
		log.Info("the server pinned the partition again (restart or leader change) and nobody else received any of it; carrying on")
	}
	c.own.mu.Lock()
	if pin != "" {
		part.pin = pin
	}
	part.refused = false
	if seq > part.lastSeq {
		part.lastSeq = seq
	}
	epoch = part.epoch
	c.own.mu.Unlock()
	c.publishPins()
	return epoch, true
}

// consumerInfo reads the partition consumer's state as the server has it now, nil
// when it cannot be read within 2 s.
func (c *Consumer) consumerInfo(ctx context.Context, part *partition) *jetstream.ConsumerInfo {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cons, err := c.js.Consumer(ictx, c.top.Stream, c.top.ConsumerName(part.n))
	if err != nil {
		return nil
	}
	return cons.CachedInfo()
}

// contested reports whether, as this worker is first pinned to a partition, messages
// delivered to another client are still unacked and not yet due for redelivery: a
// consumer leader that changed (pins are not replicated) pinned this worker while the
// partition's owner still held messages. Publishing the newer messages now would put
// them before those. Then this worker stops pulling for the ack wait and a second,
// leaving everything it received unacked, so that all of it comes again, first (and
// gathered into stream order, gather.go). A first message that is itself a redelivery
// means the outstanding ones are due and being delivered again now: not contested.
// info is the consumer's state read as the partition came, nil if unknown.
func (c *Consumer) contested(ctx context.Context, part *partition, meta *jetstream.MsgMetadata, info *jetstream.ConsumerInfo, log *zap.Logger) bool {
	if info == nil || meta.NumDelivered > 1 || meta.Sequence.Consumer == 0 {
		return false
	}
	if info.AckFloor.Consumer+1 >= meta.Sequence.Consumer {
		return false
	}
	log.Warn("pinned while another client's deliveries of the partition are outstanding",
		zap.Uint64("ack_floor", info.AckFloor.Consumer), zap.Uint64("first_delivery", meta.Sequence.Consumer))
	c.pause(ctx, part, log)
	return true
}

// pause stops pulling a partition for the ack wait and a second, leaving what it
// received unacked: then every outstanding message is due and comes again before
// anything newer.
func (c *Consumer) pause(ctx context.Context, part *partition, log *zap.Logger) {
	part.gather.drop()
	wait := c.cfg.AckWait + time.Second
	c.own.mu.Lock()
	part.resumeAt = time.Now().Add(wait)
	cc := part.cc // nil while start has not got it yet: start stops it then
	c.own.mu.Unlock()
	if cc != nil {
		cc.Stop()
	}
	c.metrics.handovers.WithLabelValues("contested").Inc()
	log.Warn("pausing the partition until its outstanding messages are due again, so that nothing overtakes them", zap.Duration("pause", wait))
}

// pinRefused handles the server's refusal of a pull under this worker's pin: it
// restarted or changed its consumer leader (and pins whichever pull comes first), or
// the pin moved to another worker. Until the next delivery, or the server, says which,
// nothing of the partition is published.
func (c *Consumer) pinRefused(ctx context.Context, part *partition, log *zap.Logger) {
	part.turn.Lock()
	defer part.turn.Unlock()
	if c.own.lease.check(time.Now()) != nil {
		c.lostLocked(ctx, part, part.pin, "the server refused its pin after this worker was away", log)
		return
	}
	c.own.mu.Lock()
	part.refused = part.pin != ""
	part.since = time.Now()
	c.own.mu.Unlock()
	log.Info("the server refused this worker's pin; holding the partition's updates until it is clear whether anyone else received messages of it")
}

// lostLocked forgets what the relay holds of a partition whose pin moved on, and
// starts a new epoch for what comes next, if the pin is still stale (another goroutine
// may have decided first). part.turn is held.
func (c *Consumer) lostLocked(ctx context.Context, part *partition, stale, why string, log *zap.Logger) {
	c.own.mu.Lock()
	if part.pin != stale {
		c.own.mu.Unlock()
		return
	}
	if stale != "" {
		part.lostPin = stale
	}
	part.pin, part.refused = "", false
	part.epoch = nuid.Next()
	c.own.mu.Unlock()
	part.gather.drop() // not ours to publish: it comes again
	c.metrics.handovers.WithLabelValues("lost").Inc()
	log.Warn("partition lost: dropping what this worker held of it", zap.String("why", why))
	_ = c.relay.Drop(ctx, part.n)
	if c.cfg.Acquired != nil {
		c.cfg.Acquired(part.n) // whoever had it meanwhile may have published
	}
	c.publishPins()
}
