package relay

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liverelay/liverelay/internal/retry"
)

// metrics are the relay's Prometheus metrics.
type metrics struct {
	events         prometheus.Counter
	updates        prometheus.Counter
	messages       prometheus.Counter
	acked          prometheus.Counter
	ackErrors      prometheus.Counter
	publishErrors  *prometheus.CounterVec
	channels       prometheus.Gauge
	latency        prometheus.Histogram
	requestSeconds prometheus.Histogram
	stale          prometheus.Counter
	breakerOpens   prometheus.Counter
	breakerOpen    *prometheus.GaugeVec
	handedBack     prometheus.Counter
	notOwned       prometheus.Counter
	inProgress     prometheus.Counter
	repeats        prometheus.Counter
}

// newMetrics registers the relay's metrics on reg.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events:   prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_events_total", Help: "Valid events taken by the relay."}),
		updates:  prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_updates_published_total", Help: "Merged channel updates accepted by the provider."}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_provider_messages_total", Help: "Provider messages accepted (an update split in three counts three)."}),
		acked:    prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_source_acks_total", Help: "Source messages acked after delivery or dead-lettering."}),
		ackErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_ack_errors_total",
			Help: "Acks that could not be sent; those messages will be delivered again."}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liverelay_publish_errors_total",
			Help: "Failed provider publishes, by outcome: retryable, permanent, exhausted."}, []string{"outcome"}),
		channels: prometheus.NewGauge(prometheus.GaugeOpts{Name: "liverelay_active_channels", Help: "Channels with events merging or an update in flight."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "liverelay_delivery_latency_seconds",
			Help:    "From the oldest merged event's emitted_at to the provider's acceptance.",
			Buckets: []float64{.005, .01, .025, .05, .075, .1, .15, .25, .5, 1, 2.5, 5, 10, 30}}),
		requestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "liverelay_provider_request_seconds",
			Help: "Duration of provider publish calls.", Buckets: prometheus.DefBuckets}),
	}
	m.stale = prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_stale_operations_total",
		Help: "Renders and removals dropped because readers already had a newer revision of the post."})
	m.breakerOpens = prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_provider_breaker_opens_total",
		Help: "Times the provider failed for every channel and all calls were held for a cool-down."})
	m.breakerOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "liverelay_provider_breaker_open",
		Help: "1 while the breaker holds every call to the provider (it failed for every channel), 0 otherwise."}, []string{"provider"})
	m.handedBack = prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_handed_back_messages_total",
		Help: "Messages given back to JetStream unpublished during a partition hand-over, for the next owner to publish first."})
	m.notOwned = prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_unowned_publishes_total",
		Help: "Jobs held back because this worker could not be sure it still held their partition."})
	m.inProgress = prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_in_progress_marks_total",
		Help: "In-progress marks sent for held messages (every LIVE_ACK_WAIT/3 while a message waits), so that JetStream does not deliver them again."})
	m.repeats = prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_repeated_events_total",
		Help: "Messages delivered again after a newer one of their channel was taken (a consumer leader change): acked, their content not merged."})
	for _, outcome := range []string{"retryable", string(retry.Permanent), string(retry.Exhausted)} {
		m.publishErrors.WithLabelValues(outcome) // at 0 from the start
	}
	reg.MustRegister(m.stale, m.breakerOpens, m.breakerOpen, m.handedBack, m.notOwned, m.inProgress, m.repeats)
	reg.MustRegister(m.events, m.updates, m.messages, m.acked, m.ackErrors, m.publishErrors, m.channels, m.latency, m.requestSeconds)
	return m
}
