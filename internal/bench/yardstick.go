package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/workload"
)

// consumersOf sets top's partition consumers up with cc and returns a handle on each.
func consumersOf(ctx context.Context, js jetstream.JetStream, top broker.Topology, cc broker.ConsumerConfig) ([]jetstream.Consumer, error) {
	if err := top.EnsureConsumers(ctx, js, cc); err != nil {
		return nil, err
	}
	return top.PartitionConsumers(ctx, js)
}

// rawConsumerConfig is the yardsticks' consumer: the relay's partitioned consumers
// with the benchmark's generous limits.
var rawConsumerConfig = broker.ConsumerConfig{AckWait: 30 * time.Second, MaxDeliver: -1, MaxAckPending: 10000, PinnedTTL: 30 * time.Second}

// yardstick measures the raw JetStream rate on this machine in this run: the same
// partitioned stream and consumers as the relay's, drained by callbacks that only
// ack. It is the limit liverelay is measured against. The steady part, for CPU, is
// from a tenth of the events acked to nine tenths.
func yardstick(ctx context.Context, js jetstream.JetStream, top broker.Topology, pullBatch int, smp *sampler) (events int, rate float64, steady Steady, err error) {
	consumers, err := consumersOf(ctx, js, top, rawConsumerConfig)
	if err != nil {
		return 0, 0, steady, err
	}
	s, err := js.Stream(ctx, top.Stream)
	if err != nil {
		return 0, 0, steady, err
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
			return 0, 0, steady, err
		}
		ccs = append(ccs, cc)
	}
	defer func() {
		for _, cc := range ccs {
			cc.Stop()
		}
	}()
	samples := make(chan Steady, 1)
	go func() { // the steady part: from a tenth of the events acked to nine tenths
		var a sample
		for _, frac := range []int{1, 9} {
			for int(acked.Load())*10 < total*frac {
				select {
				case <-time.After(time.Millisecond):
				case <-done:
				}
			}
			b := smp.take(int(acked.Load()))
			if frac == 1 {
				a = b
				continue
			}
			st, err := steadyOf(a, b)
			if err != nil {
				st = Steady{}
			}
			samples <- st
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return 0, 0, steady, ctx.Err()
	}
	// Acks are asynchronous: the drain ends when the server has them all.
	end, err := waitDrained(ctx, js, top, time.Minute, 5*time.Millisecond, nil)
	if err != nil {
		return 0, 0, steady, err
	}
	return total, float64(total) / end.Sub(start).Seconds(), <-samples, nil
}

// latencyYardstick measures raw JetStream publish → consume latency on this machine in
// this run: the load at rate for d, on the same partitioned stream and consumers as
// the relay's, read by callbacks that take the latency of every post (from its
// data-rev, as the provider does) and ack. The steady part, for CPU, leaves out the
// load's warm-up.
func latencyYardstick(ctx context.Context, js jetstream.JetStream, top broker.Topology, gen *workload.Generator, rate int, d time.Duration, pullBatch int, smp *sampler) (lat []uint32, steady Steady, err error) {
	consumers, err := consumersOf(ctx, js, top, rawConsumerConfig)
	if err != nil {
		return nil, steady, err
	}
	var mu sync.Mutex
	lat = make([]uint32, 0, rate*int(d.Seconds()+1))
	var ccs []jetstream.ConsumeContext
	defer func() {
		for _, cc := range ccs {
			cc.Stop()
		}
	}()
	for _, c := range consumers {
		var mine []uint32 // one callback at a time per consumer
		cc, err := c.Consume(func(m jetstream.Msg) {
			mine = appendLatencies(mine[:0], string(m.Data()), time.Now().UnixMicro())
			_ = m.Ack()
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}, jetstream.PullPriorityGroup(broker.PriorityGroup), jetstream.PullMaxMessages(pullBatch))
		if err != nil {
			return nil, steady, err
		}
		ccs = append(ccs, cc)
	}
	var sent atomic.Int64
	first := make(chan sample, 1)
	t := time.AfterFunc(warmUp(d), func() { first <- smp.take(int(sent.Load())) })
	defer t.Stop()
	if _, err := load(ctx, js, top.Prefix, gen, rate, d, &sent, nil); err != nil {
		return nil, steady, err
	}
	last := smp.take(int(sent.Load()))
	if _, err := waitDrained(ctx, js, top, time.Minute, 5*time.Millisecond, nil); err != nil {
		return nil, steady, err
	}
	steady, err = steadyOf(<-first, last)
	mu.Lock()
	defer mu.Unlock()
	return lat, steady, err
}
