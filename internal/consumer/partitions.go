package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/group"
)

// Group is the worker group this worker belongs to (package group).
type Group interface {
	Alive() []string
	Changes() <-chan struct{}
	SetHolding(pulling []int, pins map[int]string)
	Leave(ctx context.Context)
}

// pinHeader carries, on every message of a pinned consumer, the pin id it was
// delivered under.
const pinHeader = "Nats-Pin-Id"

// partition is one partition this worker consumes, or is handing over.
//
// Its pin fields are read by Owns (under Ownership.mu) and changed only while turn is
// held, so that the message handler and the watchdog never decide about the same
// partition at once.
type partition struct {
	n         int
	cc        jetstream.ConsumeContext
	releasing bool
	since     time.Time // when pulling started

	turn sync.Mutex
	pin  string // the server's pin id of the messages received, "" before the first
	// epoch tags the messages of one unbroken holding of the partition; it changes
	// when the partition was lost, so that what was held before is never published.
	epoch   string
	lostPin string // the pin of the last holding lost: its late messages are not ours
	// lastSeq is the consumer's delivery sequence of the last message received: the
	// next delivery to anyone gets lastSeq+1, so a gap means another client received
	// messages of the partition meanwhile.
	lastSeq uint64
	// refused: the server refused this worker's pin (it restarted, or moved the
	// partition). Nothing is published until the next delivery or the server says
	// whether anyone else received messages meanwhile.
	refused bool
	// resumeAt: pulling stopped because other clients' deliveries were outstanding
	// when this worker was pinned (see contested); it starts again then.
	resumeAt time.Time
	// gather holds back the first deliveries of a partition that just came, until
	// all that its previous owner left unacked came (gather.go).
	gather gathering
}

// reconcile makes the partitions consumed here match the assignment.
func (c *Consumer) reconcile(ctx context.Context) {
	want := group.Assign(c.group.Alive(), c.top.Partitions)[c.self]
	c.own.mu.Lock()
	var start []int
	for _, p := range want {
		if c.own.parts[p] == nil {
			start = append(start, p)
		}
	}
	var release []*partition
	for p, part := range c.own.parts {
		switch {
		case !part.releasing && !slices.Contains(want, p):
			part.releasing = true
			release = append(release, part)
		case !part.releasing && !part.resumeAt.IsZero() && time.Now().After(part.resumeAt):
			// A pause (contested) is over: pull again, with a fresh handle.
			delete(c.own.parts, p)
			start = append(start, p)
		}
	}
	c.own.mu.Unlock()
	for _, p := range start {
		if err := c.start(ctx, p); err != nil {
			c.log.Warn("start consuming a partition; will try again", zap.Int("partition", p), zap.Error(err))
		}
	}
	for _, part := range release {
		c.releases.Add(1)
		go func() {
			defer c.releases.Done()
			c.release(part, "rebalance")
			c.poke()
		}()
	}
	c.updateOwned()
	c.publishPins()
}

// start begins pulling partition p. The server delivers to this worker only once it
// pins the partition to it: at once when nobody holds it, or when the holder lets it go.
func (c *Consumer) start(ctx context.Context, p int) error {
	name := c.top.ConsumerName(p)
	// A fresh handle: the client remembers the last pin id per handle.
	cons, err := c.js.Consumer(ctx, c.top.Stream, name)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", name, err)
	}
	part := &partition{n: p, since: time.Now(), epoch: nuid.Next()}
	log := c.log.With(zap.Int("partition", p))
	// Known before its first message can reach the relay, which asks Owns.
	c.own.mu.Lock()
	c.own.parts[p] = part
	c.own.mu.Unlock()
	// Messages still arrive while the partition is handed over at shutdown, after ctx
	// ended: they must reach the relay, which runs until the consumer returns.
	ctx = context.WithoutCancel(ctx)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		c.handlers.Add(1)
		defer c.handlers.Done()
		meta, err := msg.Metadata()
		if err != nil {
			meta = &jetstream.MsgMetadata{}
		}
		epoch, ok := c.notePin(ctx, part, msg.Headers().Get(pinHeader), meta, log)
		if !ok {
			return // not this worker's to handle; the message is delivered again
		}
		c.deliver(ctx, part, msg, meta, log, epoch)
	},
		jetstream.PullPriorityGroup(broker.PriorityGroup),
		jetstream.PullMaxMessages(c.cfg.PullBatch),
		jetstream.PullExpiry(c.cfg.PullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			switch {
			case errors.Is(err, jetstream.ErrPinIDMismatch):
				c.pinRefused(ctx, part, log)
			case errors.Is(err, jetstream.ErrNoHeartbeat):
			default:
				log.Warn("consume", zap.Error(err))
			}
		}),
	)
	c.own.mu.Lock()
	defer c.own.mu.Unlock()
	if err != nil {
		delete(c.own.parts, p)
		return fmt.Errorf("consume %s: %w", name, err)
	}
	part.cc = cc
	if !part.resumeAt.IsZero() {
		cc.Stop() // its first message paused it before Consume returned
	}
	log.Debug("pulling partition")
	return nil
}

// release hands a partition over: stop pulling, deliver what arrived to the relay,
// publish and ack it all (or hand it back), then unpin so that the next owner's
// waiting pull is served at once.
func (c *Consumer) release(part *partition, why string) {
	start := time.Now()
	log := c.log.With(zap.Int("partition", part.n), zap.String("why", why))
	// The server keeps the pin for PinnedTTL after the last pull, which may have been
	// a pull expiry before now: the whole hand-over must end before that.
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.HandoverTimeout)
	defer cancel()
	// What the server sent before it saw the unsubscribe still reaches the handler.
	part.cc.Drain()
	select {
	case <-part.cc.Closed():
	case <-ctx.Done():
		log.Warn("draining the partition's subscription did not finish")
	}
	c.flushGathered(ctx, part, log)
	back, err := c.relay.Release(ctx, part.n)
	if err != nil {
		log.Warn("hand-over ran out of time: the rest was handed back to JetStream for the next owner", zap.Error(err))
	}
	if c.cfg.Released != nil {
		c.cfg.Released(ctx, part.n)
	}
	part.turn.Lock()
	pin := part.pin
	part.turn.Unlock()
	if pin != "" {
		c.unpin(part.n, pin, back, log)
	}
	c.own.mu.Lock()
	if c.own.parts[part.n] == part {
		delete(c.own.parts, part.n)
	}
	c.own.mu.Unlock()
	c.metrics.handovers.WithLabelValues("released").Inc()
	c.updateOwned()
	c.publishPins()
	log.Info("partition handed over", zap.Duration("took", time.Since(start).Round(time.Millisecond)), zap.Int("handed_back", back))
}

// unpin lets the server give the partition to the next worker now, if this worker
// still holds its pin (never unpin another worker) and every message delivered to it
// is acked or was handed back (those wait first in line for the next owner).
func (c *Consumer) unpin(p int, pin string, handedBack int, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Acks and hand-backs are plain publishes: make sure the server has them before
	// asking it what is still pending.
	if err := c.nc.FlushWithContext(ctx); err != nil {
		log.Warn("unpin: flush; the pin expires by itself", zap.Error(err))
		return
	}
	name := c.top.ConsumerName(p)
	cons, err := c.js.Consumer(ctx, c.top.Stream, name)
	if err != nil {
		log.Warn("unpin: look up the consumer; the pin expires by itself", zap.Error(err))
		return
	}
	info := cons.CachedInfo()
	if holder := pinned(info); holder != pin {
		return // the pin is someone else's already
	}
	if info.NumAckPending > handedBack {
		// Delivered to this worker but never handled (lost in the client): unpinned
		// now, the next owner would get newer messages before them. The pin runs out
		// by itself once they are due for redelivery.
		log.Warn("messages delivered here are unaccounted for; leaving the pin to expire",
			zap.Int("ack_pending", info.NumAckPending), zap.Int("handed_back", handedBack))
		return
	}
	if err := c.stream.UnpinConsumer(ctx, name, broker.PriorityGroup); err != nil {
		log.Warn("unpin; the pin expires by itself", zap.Error(err))
	}
}

// pinned returns the pin id of the relay group in a consumer's info.
func pinned(info *jetstream.ConsumerInfo) string {
	if info == nil {
		return ""
	}
	for _, g := range info.PriorityGroups {
		if g.Group == broker.PriorityGroup {
			return g.PinnedClientID
		}
	}
	return ""
}

// verifyPins asks the server, after a pause or a long disconnection, or after it
// refused a pin, who holds each partition consumed here. A partition pinned to
// another client, or to nobody after this worker was away, is lost; one the server
// refused is kept if nobody else received any of its messages meanwhile. It reports
// whether every partition could be checked.
func (c *Consumer) verifyPins(ctx context.Context, away bool) bool {
	c.own.mu.Lock()
	var check []*partition
	for _, part := range c.own.parts {
		if away || part.refused {
			check = append(check, part)
		}
	}
	c.own.mu.Unlock()
	all := true
	for _, part := range check {
		part.turn.Lock()
		mine, seen := part.pin, part.lastSeq
		part.turn.Unlock()
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cons, err := c.js.Consumer(ictx, c.top.Stream, c.top.ConsumerName(part.n))
		cancel()
		if err != nil {
			all = false
			continue
		}
		info := cons.CachedInfo()
		holder := pinned(info)
		log := c.log.With(zap.Int("partition", part.n))
		part.turn.Lock()
		switch {
		case part.pin != mine || part.lastSeq != seen:
			// A delivery came meanwhile and decided (notePin).
		case away && mine != "" && holder != mine:
			// Pinned to another client, or to nobody yet: either way this worker's
			// messages are due for redelivery and come before anything newer.
			c.lostLocked(ctx, part, mine, "paused or cut off past the pinned TTL", log)
		case part.refused && holder != "" && holder != mine:
			c.lostLocked(ctx, part, mine, "the server pinned the partition to another client", log)
		case part.refused && info.Delivered.Consumer == seen:
			c.own.mu.Lock()
			part.refused = false
			c.own.mu.Unlock()
			log.Info("the server refused this worker's pin, and nobody else received messages of the partition; carrying on")
		case part.refused && info.Delivered.Consumer > seen:
			c.lostLocked(ctx, part, mine, "another client received messages of the partition", log)
		}
		part.turn.Unlock()
	}
	return all
}

// pins returns the pin held per partition.
func (c *Consumer) pins() map[int]string {
	c.own.mu.Lock()
	defer c.own.mu.Unlock()
	out := map[int]string{}
	for p, part := range c.own.parts {
		if part.pin != "" {
			out[p] = part.pin
		}
	}
	return out
}

func (c *Consumer) publishPins() { c.group.SetHolding(c.pulling(), c.pins()) }

// pulling lists the partitions pulled here and not being handed over, sorted.
func (c *Consumer) pulling() []int {
	c.own.mu.Lock()
	defer c.own.mu.Unlock()
	var out []int
	for p, part := range c.own.parts {
		if !part.releasing {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// poke asks the run loop to reconcile again.
func (c *Consumer) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// releaseAll hands every partition over at once, at shutdown.
func (c *Consumer) releaseAll() {
	c.own.mu.Lock()
	var parts []*partition
	for _, part := range c.own.parts {
		if !part.releasing {
			part.releasing = true
			parts = append(parts, part)
		}
	}
	c.own.mu.Unlock()
	var wg sync.WaitGroup
	for _, part := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.release(part, "shutdown")
		}()
	}
	wg.Wait()
	c.releases.Wait()
}
