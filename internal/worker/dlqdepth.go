package worker

import (
	"context"
	"math"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// dlqDepthTimeout bounds the stream read of one scrape of liverelay_dlq_messages; a
// read that does not finish in time reports NaN rather than holding the scrape.
const dlqDepthTimeout = 2 * time.Second

// dlqDepth exposes the number of letters in the dead-letter stream.
func dlqDepth(reg prometheus.Registerer, js jetstream.JetStream, stream string) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "liverelay_dlq_messages",
		Help: "Letters in the dead-letter stream, read when scraped."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), dlqDepthTimeout)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return math.NaN()
		}
		return float64(s.CachedInfo().State.Msgs)
	}))
}
