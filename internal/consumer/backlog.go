package consumer

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liverelay/liverelay/internal/broker"
)

// BacklogInterval is how often Backlog reads the partition consumers.
const BacklogInterval = 5 * time.Second

// Backlog exposes what each partition's consumer has waiting, read from the server
// (one consumer listing of the event stream) every interval: messages not yet
// delivered to any worker, and messages delivered and not yet acked. It covers every
// partition, whoever consumes it, so a partition nobody pulls shows its backlog too;
// every worker reports the same numbers (aggregate with max by (partition)).
type Backlog struct {
	stream     jetstream.Stream
	top        broker.Topology
	every      time.Duration
	pending    *prometheus.GaugeVec
	ackPending *prometheus.GaugeVec
	errors     prometheus.Counter
}

// NewBacklog registers the backlog metrics on reg, every partition's series at zero.
func NewBacklog(stream jetstream.Stream, top broker.Topology, every time.Duration, reg prometheus.Registerer) *Backlog {
	b := &Backlog{
		stream: stream, top: top, every: every,
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "liverelay_partition_pending_messages",
			Help: "Messages of a partition not yet delivered to any worker, read from its consumer every 5 s (every partition, whoever consumes it)."},
			[]string{"partition"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "liverelay_partition_ack_pending_messages",
			Help: "Messages of a partition delivered and not yet acked, read from its consumer every 5 s (every partition, whoever consumes it)."},
			[]string{"partition"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_backlog_read_errors_total",
			Help: "Failed reads of the partition consumers' state; the partition gauges keep their last values meanwhile."}),
	}
	for p := range top.Partitions {
		b.pending.WithLabelValues(strconv.Itoa(p))
		b.ackPending.WithLabelValues(strconv.Itoa(p))
	}
	reg.MustRegister(b.pending, b.ackPending, b.errors)
	return b
}

// Run reads the backlog at once and then every interval, until ctx is cancelled.
func (b *Backlog) Run(ctx context.Context) error {
	tick := time.NewTicker(b.every)
	defer tick.Stop()
	for {
		b.read(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// read lists the stream's consumers and sets the gauges of the partition consumers.
func (b *Backlog) read(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, min(b.every, 5*time.Second))
	defer cancel()
	partition := make(map[string]string, b.top.Partitions)
	for p := range b.top.Partitions {
		partition[b.top.ConsumerName(p)] = strconv.Itoa(p)
	}
	list := b.stream.ListConsumers(rctx)
	for info := range list.Info() {
		if p, ok := partition[info.Name]; ok {
			b.pending.WithLabelValues(p).Set(float64(info.NumPending))
			b.ackPending.WithLabelValues(p).Set(float64(info.NumAckPending))
		}
	}
	if list.Err() != nil && ctx.Err() == nil {
		b.errors.Inc()
	}
}
