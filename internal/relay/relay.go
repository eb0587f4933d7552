// Package relay is the heart of the worker: it merges each channel's events over a short
// window, publishes one update per channel at a time (so a channel's updates never
// overtake each other), retries failures while newer events keep merging in, dead-letters
// what cannot be delivered, and acks source messages only once their content is safe.
//
// One goroutine (the loop) owns all per-channel state; a bounded pool of publishers does
// the I/O and reports back. docs/architecture.md tells how each guarantee is kept.
package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/retry"
	"go.uber.org/zap"
)

// Provider sends messages to a WebSocket provider.
type Provider interface {
	Name() string
	Limits() publish.Limits
	// CheckChannel returns an error when the provider would never accept the channel.
	CheckChannel(channel string) error
	// Publish sends msgs in order; on error none can be assumed delivered.
	Publish(ctx context.Context, msgs []publish.Message) error
}

// DeadLetters stores what cannot be delivered; nil means it is stored durably.
type DeadLetters interface {
	Write(ctx context.Context, l dlq.Letter) error
}

// Fence drops operations older than what was already published, and records what was
// published (package fence). Neither waits for storage: a message may be acked as soon
// as its update is recorded.
type Fence interface {
	// first is the stream sequence of the oldest message u comes from.
	Check(ctx context.Context, partition int, first uint64, u *merge.Update) (dropped int, err error)
	// Record notes u, from partition, as published.
	Record(partition int, u *merge.Update)
	// Received notes that a message of partition came to this worker.
	Received(partition int, seq uint64)
}

// A fence error with a Wait method that returns true makes the job wait briefly, like
// an owner in doubt, without spending a retry attempt.
type waitError interface{ Wait() bool }

// Source is the stream message an event came from.
type Source interface {
	Ack() error
	InProgress() error
	// Nak asks JetStream to deliver the message again now, before newer ones: how a
	// partition handed to another worker gives back what it could not publish.
	Nak() error
}

// Owner says whether this worker still holds a partition in the epoch its events
// came in (package consumer). A publisher asks it before every provider call, so
// that a worker that lost a partition (paused, cut off from NATS) does not publish
// after the new owner did.
type Owner interface {
	// Owns returns nil when the job may be published; an error wrapping
	// ErrPartitionGone when the partition is another worker's now (the job is dropped,
	// unacked); any other error while the worker is not sure (the job waits).
	Owns(partition int, epoch string) error
}

// ErrPartitionGone says that a partition, or the epoch a job's events came in, is no
// longer this worker's.
var ErrPartitionGone = errors.New("the partition is no longer this worker's")

// Input is one valid event handed to the relay, with the message it came from.
type Input struct {
	Event   event.Event
	Token   string // the channel's subject token
	Subject string // the stored subject
	Seq     uint64 // the stream sequence
	Msg     Source
	// Partition is the partition the event came from (a channel's events all come
	// from one); Epoch tags one unbroken holding of it by this worker (package
	// consumer), so that what was held before a loss is never published.
	Partition int
	Epoch     string
}

// Config tunes the relay.
type Config struct {
	Window          time.Duration // how long a channel's first event waits for others to merge
	MaxEvents       int           // flush a channel's update early at this many events…
	MaxBytes        int           // …or this many encoded bytes
	Concurrency     int           // provider calls in flight
	Retry           retry.Policy
	KeepAlive       time.Duration // how often held messages are told to JetStream to be in progress
	ShutdownTimeout time.Duration // how long shutdown may spend flushing
}

// Deps are what a relay works with. All are required: a worker always has a fence and
// a consumer that owns partitions, so the relay has no "none" branch to keep; a test
// without them passes implementations that accept everything.
type Deps struct {
	Provider    Provider
	DeadLetters DeadLetters
	Fence       Fence
	// Owner is, in a worker, the consumer's ownership of partitions, built before the
	// consumer so that the relay and the consumer need not be wired in two steps
	// (package consumer, Ownership).
	Owner    Owner
	Registry prometheus.Registerer // the relay's metrics are registered here
	Log      *zap.Logger
}

// Relay merges, publishes, retries and acks. Build it with New, feed it with Submit and
// run it with Run.
type Relay struct {
	cfg      Config
	provider Provider
	dead     DeadLetters
	fence    Fence
	owner    Owner
	log      *zap.Logger
	metrics  *metrics
	breaker  prometheus.Gauge // the provider's series of metrics.breakerOpen
	now      func() time.Time

	backMu sync.Mutex
	back   map[int]int // messages handed back per partition

	in      chan Input
	ctl     chan control
	calls   chan *call
	results chan *call
	stopped chan struct{}
	exited  chan struct{} // closed when the loop has returned
}

// New checks cfg and d, registers the relay's metrics on d.Registry and returns the
// relay.
func New(cfg Config, d Deps) (*Relay, error) {
	switch {
	case cfg.Window < 0:
		return nil, errors.New("relay: window must be ≥ 0")
	case cfg.MaxEvents < 1 || cfg.MaxBytes < 1 || cfg.Concurrency < 1:
		return nil, errors.New("relay: MaxEvents, MaxBytes and Concurrency must be ≥ 1")
	case cfg.KeepAlive <= 0 || cfg.ShutdownTimeout <= 0:
		return nil, errors.New("relay: KeepAlive and ShutdownTimeout must be > 0")
	case cfg.Retry.Initial <= 0 || cfg.Retry.Max < cfg.Retry.Initial:
		return nil, errors.New("relay: retry Initial must be > 0 and Max ≥ Initial")
	case d.Provider == nil || d.DeadLetters == nil || d.Fence == nil || d.Owner == nil || d.Registry == nil || d.Log == nil:
		return nil, errors.New("relay: Provider, DeadLetters, Fence, Owner, Registry and Log are required")
	}
	m := newMetrics(d.Registry)
	return &Relay{
		cfg:      cfg,
		provider: d.Provider,
		dead:     d.DeadLetters,
		fence:    d.Fence,
		owner:    d.Owner,
		log:      d.Log,
		metrics:  m,
		breaker:  m.breakerOpen.WithLabelValues(d.Provider.Name()), // at 0 from the start
		now:      time.Now,
		in:       make(chan Input), // unbuffered: Submit returns nil only once the loop has the event
		ctl:      make(chan control),
		calls:    make(chan *call),
		results:  make(chan *call, cfg.Concurrency),
		stopped:  make(chan struct{}),
		exited:   make(chan struct{}),
	}, nil
}

// ErrStopped is returned by Submit once the relay no longer takes events.
var ErrStopped = errors.New("relay stopped taking events")

// Submit hands one event to the relay, waiting while the relay is busy. The event's
// message is acked by the relay once its content is delivered or dead-lettered; an
// error means the relay did not take it, and the caller leaves it unacked.
func (r *Relay) Submit(ctx context.Context, in Input) error {
	r.fence.Received(in.Partition, in.Seq)
	select {
	case r.in <- in:
		return nil
	case <-r.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run runs the relay until ctx is cancelled, then stops taking events, publishes what
// it holds (within ShutdownTimeout) and returns. Messages it could not finish stay
// unacked, for JetStream to deliver again.
func (r *Relay) Run(ctx context.Context) error {
	// Publishing must outlive ctx for the flush at shutdown; the loop cancels it when
	// the shutdown deadline passes.
	pubCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	done := make(chan struct{})
	for i := 0; i < r.cfg.Concurrency; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			r.publisher(pubCtx)
		}()
	}
	l := newLoop(r)
	err := l.run(ctx, cancel)
	close(r.exited)
	close(r.calls)
	for i := 0; i < r.cfg.Concurrency; i++ {
		<-done
	}
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}
