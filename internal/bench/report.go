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
	if asked := float64(c.Rate) * c.Duration.Seconds(); c.Rate > 0 && float64(r.Events) < 0.98*asked {
		fmt.Fprintf(w, "load short of its rate:   %.0f events/s published of %d asked: JetStream took no more\n", float64(r.Events)/c.Duration.Seconds(), c.Rate)
	}
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
	if r.Floor.Groups > 0 {
		fmt.Fprintf(w, "message floor/1000:       %.1f  (%d groups of a channel's events within one %v window; %.1f/1000 split to %d-byte messages: %d)\n",
			per(int64(r.Floor.Groups)), r.Floor.Groups, c.Window, per(int64(r.Floor.Split)), maxData, r.Floor.Split)
		ratio := float64(r.Messages) / float64(r.Floor.Groups)
		fmt.Fprintf(w, "messages sent / floor:    %.2f  (%.2f of the split floor)\n", ratio, float64(r.Messages)/float64(max(r.Floor.Split, 1)))
		if ratio < 0.995 {
			fmt.Fprintf(w, "                          below 1: events reached the relay together (a backlog, or late), so it merged more than one window of emission time\n")
		}
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintf(w, "latency emitted→provider: p50 %s  p99 %s  p99.9 %s  (%d samples)\n", ms(r.LatencyP50), ms(r.LatencyP99), ms(r.LatencyP999), r.LatencySamples)
	if r.RawLatencySamples > 0 {
		fmt.Fprintf(w, "raw JetStream latency:    p50 %s  p99 %s  p99.9 %s  (%d samples; publish→consume, same server, same run, %.0f events/s published)\n",
			ms(r.RawLatencyP50), ms(r.RawLatencyP99), ms(r.RawLatencyP999), r.RawLatencySamples, float64(r.RawSteady.Events)/max(r.RawSteady.Seconds, 1e-9))
		fmt.Fprintf(w, "latency over raw:         p50 %+.1fms  p99 %+.1fms  p99.9 %+.1fms  (window %v)\n",
			msf(r.LatencyP50-r.RawLatencyP50), msf(r.LatencyP99-r.RawLatencyP99), msf(r.LatencyP999-r.RawLatencyP999), c.Window)
	}
	st := r.Steady
	if st.Events > 0 {
		fmt.Fprintf(w, "steady part:              %d events in %.2fs (%s)\n", st.Events, st.Seconds, steadyPart(c))
		if r.PeakRSS > 0 {
			fmt.Fprintf(w, "worker CPU/1000 events:   %.1f core-ms  (worker process, /proc utime+stime)\n", st.PerThousand(st.Worker))
		}
		fmt.Fprintf(w, "server CPU/1000 events:   %.1f core-ms  (nats-server, a process of its own, serving the %s)\n", st.PerThousand(st.Server), relayName(c))
	}
	if rs := r.RawSteady; rs.Events > 0 {
		fmt.Fprintf(w, "raw server CPU/1000:      %.1f core-ms  (nats-server serving the yardstick's consumer: %d events in %.2fs)\n", rs.PerThousand(rs.Server), rs.Events, rs.Seconds)
		if st.Events > 0 && rs.Server > 0 {
			fmt.Fprintf(w, "server CPU over raw:      %.2f×\n", st.PerThousand(st.Server)/rs.PerThousand(rs.Server))
		}
		if c.Rate <= 0 {
			fmt.Fprintf(w, "raw consumer CPU/1000:    %.1f core-ms  (the yardstick's consumer, which only acks)\n", rs.PerThousand(rs.Bench))
		}
	}
	if r.PeakRSS > 0 {
		fmt.Fprintf(w, "worker peak RSS:          %.1f MB\n", float64(r.PeakRSS)/1e6)
		fmt.Fprintf(w, "worker allocs/event:      %.1f  (steady part, go_memstats_mallocs_total)\n", r.AllocsPerEvent)
		fmt.Fprintf(w, "fence writes/1000 events: %.1f  (%.0f writes to the fence bucket over the run)\n", per(int64(r.FenceWrites)), r.FenceWrites)
	}
	if r.DrainPerSec > 0 {
		fmt.Fprintf(w, "drain after outage:       %.0f events/s\n", r.DrainPerSec)
		fmt.Fprintf(w, "in-progress during it:    %.0f marks (%.0f/s)\n", r.OutageMarks, r.OutageMarks/c.Outage.Seconds())
	}
	fmt.Fprintf(w, "setup: channels=%d rate=%d duration=%v window=%v partitions=%d concurrency=%d provider-delay=%v outage=%v sync=%s sizes=%d-%d shares new/edit/remove=%.2f/%.2f/%.2f burst=%.2fx%d\n",
		c.Workload.Channels, c.Rate, c.Duration, c.Window, c.Partitions, c.Concurrency, c.ProviderDelay, c.Outage, c.Sync,
		c.Workload.MinSize, c.Workload.MaxSize, c.Workload.NewShare, c.Workload.EditShare, c.Workload.RemoveShare, c.Workload.BurstShare, c.Workload.BurstLen)
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func steadyPart(c Config) string {
	if c.Rate > 0 {
		return fmt.Sprintf("from %v into the load to its end", warmUp(c.Duration))
	}
	return "from a tenth of the backlog acked to nine tenths"
}

func relayName(c Config) string {
	if c.Naive {
		return "naive relay"
	}
	return "worker"
}
