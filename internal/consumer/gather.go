package consumer

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// How a partition that comes to this worker takes over what its previous owner left
// unacked: all of it, in stream order.
//
// The server delivers a message again when its ack wait, counted from its delivery or
// its last in-progress mark, runs out; several at once go in stream order, but one that
// runs out sooner goes sooner. A previous owner that kept an older message in progress
// through a long retry, and died holding a newer message of the same channel that it
// had received but not yet read or marked, leaves the newer one due first: handed to
// the relay in that order, the older new post would land above the newer one on
// readers' pages. When the server pins a partition to this worker, every message its
// previous owner held is already due (PinnedTTL exceeds the ack wait and a pull
// expiry), so all of them come at once, first; the consumer counts them (the
// consumer's ack-pending count as the partition came), gathers that many, and hands
// them to the relay sorted by stream sequence.
//
// If they do not all come within the gather time, the consumer asks the server again.
// Messages still outstanding with another client (a previous owner still alive, or a
// consumer leader that pinned this worker too early) would come after newer ones: the
// partition then pauses as a contested one does, leaving what it gathered unacked, and
// everything comes again in order. Otherwise (they were acked meanwhile) what came goes
// on.

// gatherTimeout bounds how long a partition that just came holds back what it
// received while the rest of the outstanding messages come, or half the ack wait if
// that is shorter (held back, they are not marked in progress). They are due when the
// pin comes and arrive within milliseconds.
const gatherTimeout = time.Second

// unknownCount is the count gathered when the server could not say how many messages
// are outstanding: the gathering runs until its time is up.
const unknownCount = math.MaxInt

// gathering holds back a partition's first deliveries until all that was outstanding
// came. Lock order: partition.turn, then mu.
type gathering struct {
	mu      sync.Mutex
	want    int    // how many to gather; 0 when not gathering
	gen     uint64 // which gathering the timer belongs to
	msgs    []gathered
	highest uint64 // the highest delivery sequence gathered
	timer   *time.Timer
	start   time.Time
}

type gathered struct {
	msg   jetstream.Msg
	seq   uint64
	epoch string
}

// dropLocked ends the gathering without handing anything on: what it held stays
// unacked and comes again. g.mu is held.
func (g *gathering) dropLocked() {
	if g.timer != nil {
		g.timer.Stop()
	}
	g.want, g.msgs, g.highest = 0, nil, 0
}

// drop is dropLocked for a caller without g.mu.
func (g *gathering) drop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dropLocked()
}

// gatherWait is how long a gathering waits for what was outstanding.
func (c *Consumer) gatherWait() time.Duration {
	return min(gatherTimeout, c.cfg.AckWait/2)
}

// startGathering makes the partition hold back its next want deliveries (the one
// being noted included), for at most gatherWait. part.turn is held.
func (c *Consumer) startGathering(ctx context.Context, part *partition, want int, log *zap.Logger) {
	g := &part.gather
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dropLocked()
	g.gen++
	gen := g.gen
	g.want, g.start = want, time.Now()
	g.timer = time.AfterFunc(c.gatherWait(), func() { c.gatherTimedOut(ctx, part, gen, log) })
}

// deliver hands a message to the relay, or holds it back while the partition gathers
// its outstanding messages.
func (c *Consumer) deliver(ctx context.Context, part *partition, msg jetstream.Msg, meta *jetstream.MsgMetadata, log *zap.Logger, epoch string) {
	g := &part.gather
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.want == 0 {
		c.handle(ctx, msg, log, part.n, epoch)
		return
	}
	g.msgs = append(g.msgs, gathered{msg: msg, seq: meta.Sequence.Stream, epoch: epoch})
	g.highest = max(g.highest, meta.Sequence.Consumer)
	if len(g.msgs) >= g.want {
		c.flushGatheredLocked(ctx, part, log, "all came")
	}
}

// gatherTimedOut decides, when the gather time is up, between handing on what came and
// pausing the partition (see above).
func (c *Consumer) gatherTimedOut(ctx context.Context, part *partition, gen uint64, log *zap.Logger) {
	part.turn.Lock()
	defer part.turn.Unlock()
	g := &part.gather
	g.mu.Lock()
	active := g.gen == gen && g.want > 0
	g.mu.Unlock()
	if !active {
		return
	}
	info := c.consumerInfo(ctx, part)
	g.mu.Lock()
	if g.gen != gen || g.want == 0 {
		g.mu.Unlock()
		return
	}
	elsewhere := outstandingElsewhere(info, len(g.msgs), g.highest)
	if elsewhere == 0 {
		c.flushGatheredLocked(ctx, part, log, "the rest was acked meanwhile")
		g.mu.Unlock()
		return
	}
	gathered := len(g.msgs)
	g.dropLocked()
	g.mu.Unlock()
	log.Warn("messages of the partition are still outstanding with another client: pausing so that nothing overtakes them",
		zap.Int("gathered", gathered), zap.Int("outstanding_elsewhere", elsewhere))
	c.pause(ctx, part, log)
}

// outstandingElsewhere is how many of a partition's unacked messages are with another
// client, by the consumer's state info: the ack-pending count less those gathered here
// and those delivered here after the last one gathered (on their way). Unknown (info is
// nil) counts as some.
func outstandingElsewhere(info *jetstream.ConsumerInfo, gathered int, highest uint64) int {
	if info == nil {
		return 1
	}
	onTheirWay := 0
	if info.Delivered.Consumer > highest {
		onTheirWay = int(info.Delivered.Consumer - highest)
	}
	return max(info.NumAckPending-gathered-onTheirWay, 0)
}

// flushGathered hands what the partition gathered to the relay now (it is being
// handed over or stopped).
func (c *Consumer) flushGathered(ctx context.Context, part *partition, log *zap.Logger) {
	g := &part.gather
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.want > 0 {
		c.flushGatheredLocked(ctx, part, log, "the partition is handed over")
	}
}

// flushGatheredLocked ends the gathering: what it holds goes to the relay in stream
// order. g.mu is held.
func (c *Consumer) flushGatheredLocked(ctx context.Context, part *partition, log *zap.Logger, why string) {
	g := &part.gather
	msgs := g.msgs
	g.dropLocked()
	bySeq := func(a, b gathered) int { return cmp.Compare(a.seq, b.seq) }
	sorted := slices.IsSortedFunc(msgs, bySeq)
	if !sorted {
		slices.SortStableFunc(msgs, bySeq)
		c.metrics.reordered.Inc()
	}
	log.Info("took over the previous owner's outstanding messages", zap.String("why", why), zap.Int("messages", len(msgs)),
		zap.Bool("reordered", !sorted), zap.Duration("took", time.Since(g.start).Round(time.Millisecond)))
	for _, m := range msgs {
		c.handle(ctx, m.msg, log, part.n, m.epoch)
	}
}
