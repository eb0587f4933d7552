package consumer

import (
	"cmp"
	"context"
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

// gatherTimeout bounds how long a partition that just came holds back what it
// received while the rest of the outstanding messages come. They are due when the
// pin comes and arrive within milliseconds; the bound only matters when a previous
// owner still alive acked some of them meanwhile, or the count was off.
const gatherTimeout = time.Second

// gathering holds back a partition's first deliveries until all that was outstanding
// came.
type gathering struct {
	mu    sync.Mutex
	want  int // how many to gather; 0 when not gathering
	msgs  []gathered
	timer *time.Timer
	start time.Time
}

type gathered struct {
	msg   jetstream.Msg
	seq   uint64
	epoch string
}

// startGathering makes the partition hold back its next want deliveries (the one
// being noted included), for at most gatherTimeout. part.turn is held.
func (c *Consumer) startGathering(ctx context.Context, part *partition, want int, log *zap.Logger) {
	g := &part.gather
	g.mu.Lock()
	defer g.mu.Unlock()
	g.want, g.msgs, g.start = want, nil, time.Now()
	g.timer = time.AfterFunc(gatherTimeout, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.want > 0 {
			c.flushGatheredLocked(ctx, part, log, "not all came in time")
		}
	})
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
	if len(g.msgs) >= g.want {
		c.flushGatheredLocked(ctx, part, log, "all came")
	}
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
	g.want, g.msgs = 0, nil
	g.timer.Stop()
	sorted := slices.IsSortedFunc(msgs, func(a, b gathered) int { return cmp.Compare(a.seq, b.seq) })
	if !sorted {
		slices.SortStableFunc(msgs, func(a, b gathered) int { return cmp.Compare(a.seq, b.seq) })
		c.metrics.reordered.Inc()
	}
	log.Info("took over the previous owner's outstanding messages", zap.String("why", why), zap.Int("messages", len(msgs)),
		zap.Bool("reordered", !sorted), zap.Duration("took", time.Since(g.start).Round(time.Millisecond)))
	for _, m := range msgs {
		c.handle(ctx, m.msg, log, part.n, m.epoch)
	}
}
