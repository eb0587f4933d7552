package consumer

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of partition ownership.
type metrics struct {
	owned     prometheus.Gauge
	ownedBy   *prometheus.GaugeVec
	handovers *prometheus.CounterVec
	reordered prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, partitions int) metrics {
	m := metrics{
		owned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "liverelay_partitions_owned",
			Help: "Partitions this worker consumes now."}),
		ownedBy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "liverelay_partition_owned",
			Help: "1 for each partition this worker consumes now, 0 for the others: sum by (partition) is 0 for a partition nobody pulls."},
			[]string{"partition"}),
		handovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liverelay_partition_handovers_total",
			Help: "Partition hand-overs seen by this worker: acquired (pinned to it), released (given to another), lost (taken while it was away), contested (pinned while another client's deliveries were outstanding: paused)."},
			[]string{"kind"}),
		reordered: prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_partition_takeovers_reordered_total",
			Help: "Partitions taken over whose previous owner's outstanding messages came again out of stream order, and were handed to the relay sorted."}),
	}
	for _, k := range []string{"acquired", "released", "lost", "contested"} {
		m.handovers.WithLabelValues(k)
	}
	for p := range partitions {
		m.ownedBy.WithLabelValues(strconv.Itoa(p))
	}
	reg.MustRegister(m.owned, m.ownedBy, m.handovers, m.reordered)
	return m
}

// updateOwned sets the ownership gauges from the partitions pulled here.
func (c *Consumer) updateOwned() {
	pulling := c.pulling()
	c.metrics.owned.Set(float64(len(pulling)))
	for p := range c.top.Partitions {
		c.metrics.ownedBy.WithLabelValues(strconv.Itoa(p)).Set(0)
	}
	for _, p := range pulling {
		c.metrics.ownedBy.WithLabelValues(strconv.Itoa(p)).Set(1)
	}
}
