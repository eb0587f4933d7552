package fence

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	pending        prometheus.GaugeFunc
	lag            prometheus.GaugeFunc
	writes         prometheus.Counter
	catchUps       prometheus.Counter
	caughtUpEvents prometheus.Counter
}

// newMetrics registers f's metrics on reg.
func newMetrics(f *Fence, reg prometheus.Registerer) metrics {
	m := metrics{
		pending: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "liverelay_fence_pending_channels",
			Help: "Channels whose published revisions are not yet stored in the fence bucket (stored every 5 s; acks do not wait)."},
			func() float64 { return float64(f.Pending()) }),
		lag: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "liverelay_fence_store_lag_seconds",
			Help: "How long the oldest published revision not yet stored in the fence bucket has waited; normally under 5 s, the store interval."},
			func() float64 { return f.Lag().Seconds() }),
		writes: prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_fence_writes_total",
			Help: "Writes to the fence bucket: one per channel stored, and partition marks."}),
		catchUps: prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_fence_catchups_total",
			Help: "Partitions this worker caught up on before publishing them (each time one came to it)."}),
		caughtUpEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_fence_catchup_events_total",
			Help: "Events read from the event stream by catch-ups: what previous owners published or held without storing it."}),
	}
	reg.MustRegister(m.pending, m.lag, m.writes, m.catchUps, m.caughtUpEvents)
	return m
}
