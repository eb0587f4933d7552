package broker

import (
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Instrument exposes the state of the connection nc on reg, read when scraped:
// whether it is connected now, and how often it reconnected.
func Instrument(reg prometheus.Registerer, nc *nats.Conn) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "liverelay_nats_connected",
			Help: "1 while the worker's NATS connection is up, 0 while it is down and reconnecting."},
			func() float64 {
				if nc.IsConnected() {
					return 1
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "liverelay_nats_reconnects_total",
			Help: "Times the worker's NATS connection was re-established after it dropped."},
			func() float64 { return float64(nc.Stats().Reconnects) }),
	)
}
