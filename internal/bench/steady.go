package bench

import (
	"os"
	"time"
)

// sample is what the processes under measurement had spent at one moment: their CPU
// time and the worker's allocations, beside how many events were done by then.
type sample struct {
	at      time.Time
	events  int
	worker  time.Duration // CPU of the worker process; 0 without one
	server  time.Duration // CPU of the JetStream server process
	bench   time.Duration // CPU of this process: load generator, provider, raw consumer
	mallocs float64       // the worker's go_memstats_mallocs_total; 0 without it
	err     error
}

// sampler reads the processes of one run.
type sampler struct {
	server int // pid
	kid    *child
}

func (s *sampler) take(events int) sample {
	out := sample{at: time.Now(), events: events}
	out.server, out.err = procCPU(s.server)
	if b, err := procCPU(os.Getpid()); err == nil {
		out.bench = b
	} else if out.err == nil {
		out.err = err
	}
	if s.kid != nil {
		w, err := procCPU(s.kid.cmd.Process.Pid)
		if err != nil && out.err == nil {
			out.err = err
		}
		out.worker = w
		m, err := s.kid.metric("go_memstats_mallocs_total")
		if err != nil && out.err == nil {
			out.err = err
		}
		out.mallocs = m
	}
	return out
}

// Steady is what the processes spent over the steady part of a run: without the
// worker's start-up, and without the first and last stretches of a drain.
type Steady struct {
	Events  int
	Seconds float64
	Worker  time.Duration
	Server  time.Duration
	Bench   time.Duration
	Mallocs float64
}

func steadyOf(a, b sample) (Steady, error) {
	if a.err != nil {
		return Steady{}, a.err
	}
	if b.err != nil {
		return Steady{}, b.err
	}
	return Steady{Events: b.events - a.events, Seconds: b.at.Sub(a.at).Seconds(),
		Worker: b.worker - a.worker, Server: b.server - a.server, Bench: b.bench - a.bench, Mallocs: b.mallocs - a.mallocs}, nil
}

// PerThousand is d per 1,000 of the steady part's events, in core-milliseconds.
func (s Steady) PerThousand(d time.Duration) float64 {
	if s.Events <= 0 {
		return 0
	}
	return d.Seconds() * 1000 * 1000 / float64(s.Events)
}

// warmUp is how much of a steady-rate load is left out of the steady part: a fifth,
// at least a second, at most half.
func warmUp(d time.Duration) time.Duration {
	return min(max(d/5, time.Second), d/2)
}
