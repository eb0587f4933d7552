package worker

import (
	"context"
	"math"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Timing is how the fail-over and hand-over times follow from LIVE_ACK_WAIT.
type Timing struct {
	// PullExpiry is how long one pull request waits on the server; a worker renews
	// its pull at least this often, which keeps its pins.
	PullExpiry time.Duration
	// PinnedTTL is how long the server keeps a partition pinned to a worker that sent
	// no pull request. It exceeds AckWait + PullExpiry, so that when a dead worker's
	// pin runs out every message it held is already due for redelivery, and the next
	// owner receives those before anything newer.
	PinnedTTL time.Duration
	// Handover bounds the publishing of a partition being handed over; it ends before
	// the pin could run out by itself.
	Handover time.Duration
}

// Timings derives the timings from the ack wait: with the default 5 s, a dead
// worker's partitions move after at most 6.5 s, and a hand-over has 4 s to publish.
func Timings(ackWait time.Duration) Timing {
	const pullExpiry = time.Second
	// The margin covers the server's redelivery timer firing a little late.
	pinned := ackWait + pullExpiry + 500*time.Millisecond
	return Timing{PullExpiry: pullExpiry, PinnedTTL: pinned, Handover: max(pinned-pullExpiry-1500*time.Millisecond, time.Second)}
}

// dlqDepth exposes the number of letters in the dead-letter stream.
func dlqDepth(reg prometheus.Registerer, js jetstream.JetStream, stream string) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "liverelay_dlq_messages",
		Help: "Letters in the dead-letter stream, read when scraped."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return math.NaN()
		}
		return float64(s.CachedInfo().State.Msgs)
	}))
}
