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

// historyIdle is how long the server keeps a history read's consumer that its reader
// left without deleting it (the reader died, or the server was away).
const historyIdle = time.Minute

// Events calls fn with each message of the partition whose stream sequence is in
// (from, to], in order, through a consumer of its own that is deleted afterwards. It
// ends with an error soon after ctx does, when a message goes missing in delivery,
// or when the stream sends nothing though events are pending (its leader moved): the
// caller reads again later.
func (h *History) Events(ctx context.Context, partition int, from, to uint64, fn func(seq uint64, data []byte)) error {
	if to <= from {
		return nil
	}
	// Not an ordered consumer: the client recreates one at every fetch and, when it
	// cannot, tries again forever whatever the context says.
	cons, err := h.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Description:       fmt.Sprintf("liverelay: a catch-up's read of partition %d", partition),
		FilterSubject:     h.top.PartitionFilter(partition),
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: historyIdle,
	})
	if err != nil {
		return err
	}
	name := cons.CachedInfo().Name
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = h.stream.DeleteConsumer(dctx, name)
		cancel()
	}()
	if cons.CachedInfo().NumPending == 0 {
		return h.endsBefore(ctx, partition, from, to)
	}
	var delivered uint64 // the consumer sequence of the last message read
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := time.Second
		if d, ok := ctx.Deadline(); ok {
			wait = min(wait, max(time.Until(d), 10*time.Millisecond))
		}
		batch, err := cons.Fetch(historyBatch, jetstream.FetchMaxWait(wait))
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
			if meta.Sequence.Consumer != delivered+1 {
				return fmt.Errorf("events of partition %d went missing in delivery after stream sequence %d", partition, from)
			}
			delivered = meta.Sequence.Consumer
			if meta.Sequence.Stream > to {
				return nil
			}
			fn(meta.Sequence.Stream, msg.Data())
			from = meta.Sequence.Stream
			switch {
			case meta.Sequence.Stream == to:
				return nil
			case meta.NumPending == 0:
				return h.endsBefore(ctx, partition, from, to)
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

// endsBefore checks a read that found nothing more after stream sequence last, short
// of to. A read's consumer sits on one server, which may be a replica behind the
// stream's leader (just after the leader's node went away): what it has not got yet
// must not be taken for nothing. The leader answers whether the event at to still
// exists; if it does, the read ended early and fails.
func (h *History) endsBefore(ctx context.Context, partition int, last, to uint64) error {
	_, err := h.stream.GetMsg(ctx, to)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil // removed since (its age, or by an operator): nothing more to read
	case err != nil:
		return fmt.Errorf("check the end of partition %d's events: %w", partition, err)
	}
	return fmt.Errorf("partition %d's events were read up to %d only, though %d exists: the server read from is behind", partition, last, to)
}
