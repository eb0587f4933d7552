package bench

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/broker"
)

// yardstick measures the raw JetStream rate on this machine in this run: the same
// partitioned stream and consumers as the relay's, drained by callbacks that only
// ack. It is the limit liverelay is measured against.
func yardstick(ctx context.Context, js jetstream.JetStream, top broker.Topology, pullBatch int) (events int, rate float64, err error) {
	consumers, err := top.EnsureConsumers(ctx, js, broker.ConsumerConfig{AckWait: 30 * time.Second, MaxDeliver: -1, MaxAckPending: 10000, PinnedTTL: 30 * time.Second})
	if err != nil {
		return 0, 0, err
	}
	s, err := js.Stream(ctx, top.Stream)
	if err != nil {
		return 0, 0, err
	}
	total := int(s.CachedInfo().State.Msgs)
	var acked atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	var ccs []jetstream.ConsumeContext
	for _, c := range consumers {
		cc, err := c.Consume(func(m jetstream.Msg) {
			_ = m.Ack()
			if int(acked.Add(1)) == total {
				close(done)
			}
		}, jetstream.PullPriorityGroup(broker.PriorityGroup), jetstream.PullMaxMessages(pullBatch))
		if err != nil {
			return 0, 0, err
		}
		ccs = append(ccs, cc)
	}
	defer func() {
		for _, cc := range ccs {
			cc.Stop()
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	// Acks are asynchronous: the drain ends when the server has them all.
	end, err := waitDrained(ctx, js, top, time.Minute)
	if err != nil {
		return 0, 0, err
	}
	return total, float64(total) / end.Sub(start).Seconds(), nil
}
