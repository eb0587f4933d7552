package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/broker"
)

// History reads how far a partition's consumer got and the partition's events: what
// the revision fence needs to catch up on a partition a previous owner published
// (package fence).
type History struct {
	stream jetstream.Stream // the event stream
	top    broker.Topology
}

// NewHistory reads the partitions of top from the event stream.
func NewHistory(stream jetstream.Stream, top broker.Topology) *History {
	return &History{stream: stream, top: top}
}

// Progress returns the partition's ack floor and the last stream sequence delivered.
func (h *History) Progress(ctx context.Context, partition int) (acked, delivered uint64, err error) {
	cons, err := h.stream.Consumer(ctx, h.top.ConsumerName(partition))
	if err != nil {
		return 0, 0, fmt.Errorf("consumer %s: %w", h.top.ConsumerName(partition), err)
	}
	info := cons.CachedInfo()
	return info.AckFloor.Stream, info.Delivered.Stream, nil
}

// historyBatch is how many events one read of a partition's history asks for.
const historyBatch = 500

// Events calls fn with each message of the partition whose stream sequence is in
// (from, to], in order, through an ordered consumer that is deleted afterwards.
func (h *History) Events(ctx context.Context, partition int, from, to uint64, fn func(seq uint64, data []byte)) error {
	if to <= from {
		return nil
	}
	oc, err := h.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{h.top.PartitionFilter(partition)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from + 1,
	})
	if err != nil {
		return err
	}
	defer func() {
		if info := oc.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = h.stream.DeleteConsumer(dctx, info.Name)
			cancel()
		}
	}()
	if info := oc.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil
	}
	for {
		wait := time.Second
		if d, ok := ctx.Deadline(); ok {
			wait = min(wait, max(time.Until(d), 10*time.Millisecond))
		}
		batch, err := oc.Fetch(historyBatch, jetstream.FetchMaxWait(wait))
		if err != nil {
			return err
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				return err
			}
			if meta.Sequence.Stream > to {
				return nil
			}
			fn(meta.Sequence.Stream, msg.Data())
			if meta.Sequence.Stream == to || meta.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if n == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			return errors.New("the event stream sent nothing though events were pending")
		}
	}
}
