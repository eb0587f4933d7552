package bench

import (
	"fmt"
	"io"
	"time"
)

// Print writes the report, events/s first.
func (r Report) Print(w io.Writer) {
	c := r.Config
	mode := "liverelay"
	if c.Naive {
		mode = "naive (one provider call per event, no merge)"
	}
	fmt.Fprintf(w, "events/s end to end:      %.0f  (%d events in %.2fs, %s)\n", r.EventsPerSec, r.Events, r.Seconds, mode)
	if r.RawPerSec > 0 {
		fmt.Fprintf(w, "raw JetStream rate:       %.0f  (consume-and-ack of %d events, same server, same run)\n", r.RawPerSec, r.RawEvents)
		fmt.Fprintf(w, "ratio to raw:             %.2f\n", r.EventsPerSec/r.RawPerSec)
	}
	per := func(n int64) float64 {
		if r.Events == 0 {
			return 0
		}
		return float64(n) * 1000 / float64(r.Events)
	}
	fmt.Fprintf(w, "provider requests/1000:   %.1f  (%d requests, %d failed)\n", per(r.Requests), r.Requests, r.FailedRequests)
	fmt.Fprintf(w, "provider messages/1000:   %.1f  (%d messages)\n", per(r.Messages), r.Messages)
	fmt.Fprintf(w, "latency emitted→provider: p50 %v  p99 %v  p99.9 %v  (%d samples)\n",
		r.LatencyP50.Round(10*time.Microsecond), r.LatencyP99.Round(10*time.Microsecond), r.LatencyP999.Round(10*time.Microsecond), r.LatencySamples)
	if r.PeakRSS > 0 {
		fmt.Fprintf(w, "worker peak RSS:          %.1f MB\n", float64(r.PeakRSS)/1e6)
		fmt.Fprintf(w, "worker allocs/event:      %.1f\n", r.AllocsPerEvent)
	}
	if r.DrainPerSec > 0 {
		fmt.Fprintf(w, "drain after outage:       %.0f events/s\n", r.DrainPerSec)
	}
	fmt.Fprintf(w, "setup: channels=%d rate=%d duration=%v window=%v partitions=%d concurrency=%d provider-delay=%v outage=%v sync=%s sizes=%d-%d shares new/edit/remove=%.2f/%.2f/%.2f burst=%.2fx%d\n",
		c.Workload.Channels, c.Rate, c.Duration, c.Window, c.Partitions, c.Concurrency, c.ProviderDelay, c.Outage, c.Sync,
		c.Workload.MinSize, c.Workload.MaxSize, c.Workload.NewShare, c.Workload.EditShare, c.Workload.RemoveShare, c.Workload.BurstShare, c.Workload.BurstLen)
}
