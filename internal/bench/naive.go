package bench

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
	"github.com/liverelay/liverelay/internal/publish"
)

// naive is the comparison users care about: a relay that publishes every event as its
// own provider message, in order per partition, with no merging and no batching.
type naive struct {
	ccs []jetstream.ConsumeContext
}

func startNaive(ctx context.Context, js jetstream.JetStream, top broker.Topology, p *publish.Pusher, pullBatch int) (*naive, error) {
	consumers, err := consumersOf(ctx, js, top, broker.ConsumerConfig{AckWait: 30 * time.Second, MaxDeliver: -1, MaxAckPending: 10000, PinnedTTL: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	n := &naive{}
	for _, c := range consumers {
		cc, err := c.Consume(func(m jetstream.Msg) {
			ev, err := event.Decode(m.Data())
			if err != nil {
				_ = m.Ack()
				return
			}
			u := merge.New(ev.Channel)
			u.Add(ev)
			msg := publish.Message{Channel: ev.Channel, Data: u.AppendJSON(nil)}
			for p.Publish(ctx, []publish.Message{msg}) != nil { // retry until the provider takes it
				select {
				case <-time.After(10 * time.Millisecond):
				case <-ctx.Done():
					return
				}
			}
			_ = m.Ack()
		}, jetstream.PullPriorityGroup(broker.PriorityGroup), jetstream.PullMaxMessages(pullBatch))
		if err != nil {
			n.stop()
			return nil, err
		}
		n.ccs = append(n.ccs, cc)
	}
	return n, nil
}

func (n *naive) stop() {
	for _, cc := range n.ccs {
		cc.Stop()
	}
}
