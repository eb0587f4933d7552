package consumer

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of partition ownership.
type metrics struct {
	owned     prometheus.Gauge
	handovers *prometheus.CounterVec
	pending   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, partitions int) metrics {
	m := metrics{
		owned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "liverelay_partitions_owned",
			Help: "Partitions this worker consumes now."}),
		handovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liverelay_partition_handovers_total",
			Help: "Partition hand-overs seen by this worker: acquired (pinned to it), released (given to another), lost (taken while it was away), contested (pinned while another client's deliveries were outstanding: paused)."},
			[]string{"kind"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "liverelay_partition_pending_messages",
			Help: "Messages of a partition this worker consumes that are not yet delivered to any worker (sampled every 5 s)."},
			[]string{"partition"}),
	}
	for _, k := range []string{"acquired", "released", "lost", "contested"} {
		m.handovers.WithLabelValues(k)
	}
	reg.MustRegister(m.owned, m.handovers, m.pending)
	return m
}

// observe samples the pending count of each partition consumed here.
func (c *Consumer) observe(ctx context.Context) {
	c.metrics.pending.Reset()
	for _, p := range c.pulling() {
		ictx, cancel := context.WithTimeout(ctx, time.Second)
		cons, err := c.js.Consumer(ictx, c.top.Stream, c.top.ConsumerName(p))
		cancel()
		if err != nil {
			continue
		}
		c.metrics.pending.WithLabelValues(strconv.Itoa(p)).Set(float64(cons.CachedInfo().NumPending))
	}
}
