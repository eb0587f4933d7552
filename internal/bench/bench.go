// Package bench measures liverelay on this machine: a JetStream server and the worker
// pipeline (each a separate process, so that their CPU and memory are their own), a
// load generator that models live blogs, and an in-process provider that accepts
// Pusher's API. It reports throughput as a ratio to the raw JetStream consume-and-ack
// rate measured in the same run, latency beside raw JetStream publish → consume
// latency in the same run, provider requests and messages per 1,000 events beside the
// fewest any relay with the same window could send, CPU per 1,000 events of the worker
// and of the server, memory and allocations.
package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/workload"
)

// Config is one benchmark run.
type Config struct {
	Duration      time.Duration // how long the load is published
	Rate          int           // events per second; 0 publishes as fast as possible, before the drain is timed
	Workload      workload.Config
	Window        time.Duration
	Partitions    int
	Concurrency   int
	ProviderDelay time.Duration // added to every provider request
	Outage        time.Duration // the provider answers 500 for this long, from a quarter into the load
	Naive         bool          // one provider call per event, no merge: the comparison
	Sync          string        // the JetStream server's fsync policy
	Yardstick     bool          // measure raw JetStream too: its rate in a backlog run, its latency with a steady rate
	Worker        string        // the worker executable
}

// Report is what a run measured.
type Report struct {
	Config         Config
	Events         int
	Seconds        float64 // from the first event taken to the last ack
	EventsPerSec   float64
	RawPerSec      float64 // the throughput yardstick (backlog runs); 0 when not measured
	RawEvents      int
	Requests       int64
	Messages       int64
	FailedRequests int64
	LatencyP50     time.Duration
	LatencyP99     time.Duration
	LatencyP999    time.Duration
	LatencySamples int
	// The latency yardstick (--rate runs): raw JetStream publish → consume.
	RawLatencyP50, RawLatencyP99, RawLatencyP999 time.Duration
	RawLatencySamples                            int
	PeakRSS                                      int64   // bytes, the worker process; 0 in naive mode
	AllocsPerEvent                               float64 // the worker process, over the steady part
	FenceWrites                                  float64 // writes to the fence bucket over the run, before the worker stopped
	DrainPerSec                                  float64 // after an outage: events delivered per second from recovery to drained
	OutageMarks                                  float64 // in-progress marks the worker sent during the outage
	// CPU and allocations over the steady part of the relay's run and of the yardstick's.
	Steady, RawSteady Steady
	Floor             floor // the fewest provider messages any relay with the window could send
}

// maxData is the provider's largest message, as the receiver enforces it (Pusher's
// limit of an event's data).
const maxData = 10240

// Run runs one benchmark.
func Run(ctx context.Context, cfg Config, log *zap.Logger) (Report, error) {
	rep := Report{Config: cfg}
	dir, err := os.MkdirTemp("", "liverelay-bench")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	srv, err := startNATS(ctx, cfg.Worker, filepath.Join(dir, "nats"), cfg.Sync)
	if err != nil {
		return rep, err
	}
	defer srv.stop()
	nc, err := broker.Connect(srv.url, "liverelay-bench", broker.Auth{}, log)
	if err != nil {
		return rep, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return rep, err
	}
	pullBatch := 500
	smp := &sampler{server: srv.pid()}
	prefill := cfg.Rate <= 0

	if cfg.Yardstick {
		top := topology("BENCH_RAW", "bench.raw", cfg.Partitions)
		if err := top.Ensure(ctx, js); err != nil {
			return rep, err
		}
		if prefill {
			log.Info("yardstick: publishing", zap.Duration("for", cfg.Duration))
			if _, err := load(ctx, js, top.Prefix, workload.New(cfg.Workload), 0, cfg.Duration, nil, nil); err != nil {
				return rep, err
			}
			log.Info("yardstick: draining with a consumer that only acks")
			if rep.RawEvents, rep.RawPerSec, rep.RawSteady, err = yardstick(ctx, js, top, pullBatch, smp); err != nil {
				return rep, fmt.Errorf("yardstick: %w", err)
			}
		} else {
			log.Info("latency yardstick: publishing at a steady rate to a consumer that only acks", zap.Int("events_per_sec", cfg.Rate), zap.Duration("for", cfg.Duration))
			lat, st, err := latencyYardstick(ctx, js, top, workload.New(cfg.Workload), cfg.Rate, cfg.Duration, pullBatch, smp)
			if err != nil {
				return rep, fmt.Errorf("latency yardstick: %w", err)
			}
			rep.RawSteady = st
			rep.RawLatencySamples = len(lat)
			rep.RawLatencyP50, rep.RawLatencyP99, rep.RawLatencyP999 = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 0.999)
		}
		if err := js.DeleteStream(ctx, top.Stream); err != nil {
			return rep, err
		}
	}

	recv, err := newReceiver(cfg.ProviderDelay)
	if err != nil {
		return rep, err
	}
	defer recv.close()
	top := topology("LIVE_EVENTS", "live.events", cfg.Partitions)
	if err := top.Ensure(ctx, js); err != nil {
		return rep, err
	}
	gen := workload.New(cfg.Workload)
	rec := newFloorRecorder()

	if prefill {
		log.Info("publishing the backlog", zap.Duration("for", cfg.Duration))
		if rep.Events, err = load(ctx, js, top.Prefix, gen, 0, cfg.Duration, nil, rec); err != nil {
			return rep, err
		}
	}

	var kid *child
	var stopNaive func()
	start := time.Now()
	if cfg.Naive {
		p, err := publish.NewPusher(publish.PusherConfig{AppID: "1", Key: "bench", Secret: "bench", Host: recv.host(), Timeout: 5 * time.Second}, log)
		if err != nil {
			return rep, err
		}
		n, err := startNaive(ctx, js, top, p, pullBatch)
		if err != nil {
			return rep, err
		}
		stopNaive = n.stop
		defer n.stop()
	} else {
		kid, err = startChild(ctx, cfg.Worker, []string{
			"LIVE_NATS_URL=" + srv.url,
			"LIVE_PARTITIONS=" + strconv.Itoa(cfg.Partitions),
			"LIVE_BATCH_WINDOW=" + cfg.Window.String(),
			"LIVE_PUBLISH_CONCURRENCY=" + strconv.Itoa(cfg.Concurrency),
			"LIVE_PROVIDER=pusher",
			"PUSHER_APP_ID=1", "PUSHER_APP_KEY=bench", "PUSHER_APP_SECRET=bench",
			"PUSHER_HOST=" + recv.host(), "PUSHER_SECURE=false",
			"LIVE_RETRY_MAX_ATTEMPTS=0", "LIVE_RETRY_MAX=2s", "LIVE_RETRY_MAX_ELAPSED=1h",
			"LIVE_PPROF=true",
		})
		if err != nil {
			return rep, err
		}
		defer kid.stop()
		start = time.Now() // the worker is ready: the drain starts now
		log.Info("worker ready", zap.String("pprof", strings.TrimSuffix(kid.metrics, "/metrics")+"/debug/pprof/"))
	}
	smp.kid = kid

	// The steady part: with a steady rate, from the end of the warm-up to the end of
	// the load; in a backlog drain, from a tenth of the events acked to nine tenths.
	var first, last sample
	var firstOK, lastOK bool
	var sent atomic.Int64
	watch := func(int) {}
	if !prefill {
		outageErr := make(chan error, 1)
		if cfg.Outage > 0 {
			go func() {
				drain, marks, err := outage(ctx, recv, js, top, cfg, func() float64 {
					if kid == nil {
						return 0
					}
					v, _ := kid.metric("liverelay_in_progress_marks_total")
					return v
				})
				rep.DrainPerSec, rep.OutageMarks = drain, marks
				outageErr <- err
			}()
		} else {
			outageErr <- nil
		}
		firstTaken := make(chan sample, 1)
		t := time.AfterFunc(warmUp(cfg.Duration), func() { firstTaken <- smp.take(int(sent.Load())) })
		defer t.Stop()
		log.Info("publishing at a steady rate", zap.Int("events_per_sec", cfg.Rate), zap.Duration("for", cfg.Duration))
		if rep.Events, err = load(ctx, js, top.Prefix, gen, cfg.Rate, cfg.Duration, &sent, rec); err != nil {
			return rep, err
		}
		last, lastOK = smp.take(rep.Events), true
		first, firstOK = <-firstTaken, true
		if err := <-outageErr; err != nil {
			return rep, err
		}
	} else {
		watch = func(n int) {
			acked := rep.Events - n
			if !firstOK && acked*10 >= rep.Events {
				first, firstOK = smp.take(acked), true
			}
			if !lastOK && acked*10 >= rep.Events*9 {
				last, lastOK = smp.take(acked), true
			}
		}
	}
	end, err := waitDrained(ctx, js, top, 10*time.Minute, 20*time.Millisecond, watch)
	if err != nil {
		return rep, err
	}
	if firstOK && lastOK {
		if rep.Steady, err = steadyOf(first, last); err != nil {
			return rep, fmt.Errorf("CPU and allocations: %w", err)
		}
	}
	rep.Floor = rec.floor(cfg.Window, maxData)
	rep.Seconds = end.Sub(start).Seconds()
	rep.EventsPerSec = float64(rep.Events) / rep.Seconds
	rep.Requests, rep.Messages, rep.FailedRequests = recv.requests.Load(), recv.messages.Load(), recv.failed.Load()
	lat := recv.takeLatencies()
	rep.LatencySamples = len(lat)
	rep.LatencyP50, rep.LatencyP99, rep.LatencyP999 = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 0.999)
	if kid != nil {
		if rep.PeakRSS, err = kid.peakRSS(); err != nil {
			return rep, err
		}
		if rep.Steady.Events > 0 {
			rep.AllocsPerEvent = rep.Steady.Mallocs / float64(rep.Steady.Events)
		}
		if rep.FenceWrites, err = kid.metric("liverelay_fence_writes_total"); err != nil {
			return rep, err
		}
		if err := kid.stop(); err != nil {
			return rep, err
		}
	}
	if stopNaive != nil {
		stopNaive()
	}
	return rep, nil
}

func topology(stream, prefix string, partitions int) broker.Topology {
	return broker.Topology{Stream: stream, Prefix: prefix, DLQStream: stream + "_DLQ", DLQPrefix: prefix + "-dlq",
		Partitions: partitions, Replicas: 1, DuplicateWindow: 2 * time.Minute, MaxAge: time.Hour}
}

// outage takes the provider down a quarter into the load for cfg.Outage, then
// measures how fast the backlog drains: the events held at recovery plus those
// arriving since, over the time until the backlog is down to what the steady rate
// keeps in flight.
//
// It also returns how many in-progress marks the worker sent during the outage (marks
// reads the worker's counter of them).
func outage(ctx context.Context, r *receiver, js jetstream.JetStream, top broker.Topology, cfg Config, marks func() float64) (float64, float64, error) {
	wait := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := wait(cfg.Duration / 4); err != nil {
		return 0, 0, err
	}
	r.down.Store(true)
	before := marks()
	if err := wait(cfg.Outage); err != nil {
		return 0, 0, err
	}
	r.down.Store(false)
	during := marks() - before
	recovered := time.Now()
	backlog, err := undelivered(ctx, js, top)
	if err != nil {
		return 0, during, err
	}
	steady := max(cfg.Rate/10, 100) // about 100 ms of events in flight
	for {
		n, err := undelivered(ctx, js, top)
		if err == nil && n <= steady {
			t := time.Since(recovered).Seconds()
			return (float64(backlog) + float64(cfg.Rate)*t) / t, during, nil
		}
		if time.Since(recovered) > 10*time.Minute {
			return 0, during, errors.New("the backlog did not drain within 10 minutes of recovery")
		}
		if err := wait(20 * time.Millisecond); err != nil {
			return 0, during, err
		}
	}
}

func percentile(us []uint32, p float64) time.Duration {
	if len(us) == 0 {
		return 0
	}
	sort.Slice(us, func(i, j int) bool { return us[i] < us[j] })
	i := int(float64(len(us)-1) * p)
	return time.Duration(us[i]) * time.Microsecond
}

// ErrConfig is wrapped by Validate's errors.
var ErrConfig = errors.New("invalid benchmark setting")

// Validate checks cfg.
func (c Config) Validate() error {
	switch {
	case c.Duration <= 0:
		return fmt.Errorf("%w: --duration must be > 0", ErrConfig)
	case c.Rate < 0:
		return fmt.Errorf("%w: --rate must be ≥ 0 (0 = as fast as possible)", ErrConfig)
	case c.Outage > 0 && c.Rate == 0:
		return fmt.Errorf("%w: --outage needs a steady --rate, so that events arrive during the outage", ErrConfig)
	case c.Outage > 0 && c.Duration/4+c.Outage >= c.Duration:
		return fmt.Errorf("%w: --outage must end before the load does (it starts at a quarter of --duration)", ErrConfig)
	case c.Workload.Channels < 1:
		return fmt.Errorf("%w: --channels must be ≥ 1", ErrConfig)
	case c.Partitions < 1 || c.Concurrency < 1:
		return fmt.Errorf("%w: --partitions and --publish-concurrency must be ≥ 1", ErrConfig)
	case c.Workload.MinSize < 1 || c.Workload.MaxSize < c.Workload.MinSize:
		return fmt.Errorf("%w: want 1 ≤ --min-size ≤ --max-size", ErrConfig)
	}
	return nil
}
