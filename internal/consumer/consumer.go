// Package consumer pulls events from the partition consumers of LIVE_EVENTS, decodes
// and validates them, dead-letters the bad ones, and hands the good ones to the relay.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/relay"
)

// Relay takes valid events and acks them once delivered (package relay).
type Relay interface {
	Submit(ctx context.Context, in relay.Input) error
	// Release publishes and acks what is held of a partition, or hands it back, and
	// says how many messages it handed back.
	Release(ctx context.Context, partition int) (handedBack int, err error)
	// Drop forgets what is held of a partition another worker now owns.
	Drop(ctx context.Context, partition int) error
}

// DeadLetters stores events that are not valid.
type DeadLetters interface {
	Write(ctx context.Context, l dlq.Letter) error
}

// Config tunes pulling and hand-overs.
type Config struct {
	Self       string        // this worker's id in the group
	PullBatch  int           // messages buffered per partition
	PullExpiry time.Duration // how long one pull request waits on the server
	PinnedTTL  time.Duration // how long the server keeps a pin without pull requests
	AckWait    time.Duration // the partition consumers' ack wait
	// HandoverTimeout bounds the publishing of a partition being handed over; it must
	// end well before the server lets the pin go by itself.
	HandoverTimeout time.Duration
	// Acquired, if set, is called when a partition is pinned to this worker, and when
	// it was lost (whoever has it meanwhile may publish).
	Acquired func(partition int)
	// Released, if set, is called when a partition is handed over, after what was held
	// of it is published and acked and before it is unpinned.
	Released func(ctx context.Context, partition int)
}

// Deps are what a consumer works with; all are required.
type Deps struct {
	Conn      *nats.Conn
	JetStream jetstream.JetStream
	Stream    jetstream.Stream // the event stream, LIVE_EVENTS
	Topology  broker.Topology
	Group     Group
	// Ownership is the consumer's record of what it holds, built with NewOwnership
	// from the same Config before the relay, which is given it too.
	Ownership   *Ownership
	Relay       Relay
	DeadLetters DeadLetters
	Registry    prometheus.Registerer // the consumer's metrics are registered here
	Log         *zap.Logger
}

// Consumer pulls the partitions the worker group assigns to this worker, hands them
// over when the assignment moves them, and reads their messages.
type Consumer struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	cfg     Config
	top     broker.Topology
	group   Group
	self    string
	relay   Relay
	dead    DeadLetters
	log     *zap.Logger
	invalid *prometheus.CounterVec
	metrics metrics
	own     *Ownership

	running  atomic.Bool
	kick     chan struct{}
	handlers sync.WaitGroup
	releases sync.WaitGroup
}

// New checks cfg and d, registers the consumer's metrics on d.Registry and returns a
// consumer of the partitions the group gives this worker.
func New(cfg Config, d Deps) (*Consumer, error) {
	switch {
	case cfg.Self == "":
		return nil, errors.New("consumer: Self is required")
	case cfg.PullBatch < 1:
		return nil, errors.New("consumer: PullBatch must be ≥ 1")
	case cfg.PullExpiry <= 0 || cfg.PinnedTTL <= cfg.PullExpiry:
		return nil, errors.New("consumer: PullExpiry must be > 0 and PinnedTTL > PullExpiry")
	case cfg.AckWait <= 0 || cfg.HandoverTimeout <= 0:
		return nil, errors.New("consumer: AckWait and HandoverTimeout must be > 0")
	case d.Topology.Partitions < 1:
		return nil, errors.New("consumer: the topology needs at least one partition")
	case d.Conn == nil || d.JetStream == nil || d.Stream == nil || d.Group == nil || d.Ownership == nil ||
		d.Relay == nil || d.DeadLetters == nil || d.Registry == nil || d.Log == nil:
		return nil, errors.New("consumer: Conn, JetStream, Stream, Group, Ownership, Relay, DeadLetters, Registry and Log are required")
	case d.Ownership.lease.limit != leaseLimit(cfg):
		return nil, errors.New("consumer: Ownership was built from another Config")
	}
	invalid := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "liverelay_invalid_events_total",
		Help: "Messages that were not valid events and went to the dead-letter stream, by reason.",
	}, []string{"reason"})
	for _, r := range dlq.Reasons() {
		switch r.Reason {
		case dlq.ReasonMaxDeliveries, dlq.ReasonChannelRejected, dlq.ReasonPostTooLarge, dlq.ReasonPermanent, dlq.ReasonExhausted:
			// letters of messages that were valid events
		default:
			invalid.WithLabelValues(string(r.Reason)) // at 0 from the start
		}
	}
	d.Registry.MustRegister(invalid)
	return &Consumer{
		nc: d.Conn, js: d.JetStream, stream: d.Stream, cfg: cfg, top: d.Topology, group: d.Group, self: cfg.Self,
		relay: d.Relay, dead: d.DeadLetters, log: d.Log,
		invalid: invalid, metrics: newMetrics(d.Registry, d.Topology.Partitions), own: d.Ownership,
		kick: make(chan struct{}, 1),
	}, nil
}

// Ready reports why the consumer is not ready to carry its share, or nil.
func (c *Consumer) Ready() error {
	if !c.nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if !c.running.Load() {
		return errors.New("not consuming")
	}
	return c.own.lease.check(time.Now())
}

// Run consumes until ctx is cancelled; then it hands every partition over (publishes
// and acks what it holds, then unpins) and returns.
func (c *Consumer) Run(ctx context.Context) error {
	c.reconcile(ctx)
	c.running.Store(true)
	c.log.Info("consuming", zap.Ints("partitions", c.pulling()))
	watchdog := time.NewTicker(250 * time.Millisecond)
	defer watchdog.Stop()
	recheck := time.NewTicker(2 * time.Second) // a failed start, a missed change
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			c.running.Store(false)
			// Leave first, so that the others already wait for the partitions when
			// each is unpinned.
			lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			c.group.Leave(lctx)
			cancel()
			c.releaseAll()
			c.handlers.Wait()
			return nil
		case <-c.group.Changes():
			c.reconcile(ctx)
		case <-c.kick:
			c.reconcile(ctx)
		case <-recheck.C:
			c.reconcile(ctx)
		case now := <-watchdog.C:
			away := c.own.lease.watch(now, c.nc.IsConnected())
			if (away || c.anyRefused()) && c.verifyPins(ctx, away) && away {
				c.own.lease.verified()
				c.log.Info("pins verified with the server after a pause or a disconnection")
			}
		}
	}
}

// anyRefused reports whether the server refused the pin of a partition consumed here.
func (c *Consumer) anyRefused() bool {
	c.own.mu.Lock()
	defer c.own.mu.Unlock()
	for _, part := range c.own.parts {
		if part.refused {
			return true
		}
	}
	return false
}

// handle takes one message: a valid event goes to the relay, anything else to the
// dead-letter stream (and is then acked). A panic is caught and dead-lettered: one bad
// message must not stop the worker.
func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg, log *zap.Logger, partition int, epoch string) {
	meta, err := msg.Metadata()
	if err != nil {
		log.Error("message without JetStream metadata", zap.String("subject", msg.Subject()), zap.Error(err))
		return
	}
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic while handling a message", zap.Uint64("seq", meta.Sequence.Stream), zap.Any("panic", p), zap.Stack("stack"))
			_, token, _ := c.top.SplitSubject(msg.Subject())
			c.reject(ctx, msg, meta.Sequence.Stream, token, "", dlq.ReasonPanic, fmt.Sprint(p), log)
		}
	}()
	_, token, err := c.top.SplitSubject(msg.Subject())
	if err != nil {
		c.reject(ctx, msg, meta.Sequence.Stream, "", "", dlq.ReasonInvalidSubject, err.Error(), log)
		return
	}
	ev, err := event.Decode(msg.Data())
	if err != nil {
		reason, detail := dlq.Reason(event.ReasonMalformed), err.Error()
		var e *event.Error
		if errors.As(err, &e) {
			reason, detail = dlq.Reason(e.Reason), e.Detail
		}
		c.reject(ctx, msg, meta.Sequence.Stream, token, "", reason, detail, log)
		return
	}
	if want := event.Token(ev.Channel); want != token {
		c.reject(ctx, msg, meta.Sequence.Stream, token, ev.Channel, event.ReasonSubjectMismatch,
			fmt.Sprintf("channel %q belongs on subject token %q, but came on %q", ev.Channel, want, token), log)
		return
	}
	in := relay.Input{Event: ev, Token: token, Subject: msg.Subject(), Seq: meta.Sequence.Stream, Msg: acker{nc: c.nc, reply: msg.Reply()},
		Partition: partition, Epoch: epoch}
	if err := c.relay.Submit(ctx, in); err != nil {
		// Not taken (shutting down): left unacked, JetStream delivers it again.
		log.Debug("event not taken", zap.Uint64("seq", meta.Sequence.Stream), zap.Error(err))
	}
}

// reject dead-letters a message that is not a valid event, then acks it. If the
// dead-letter write fails the message is not acked but handed back for a later try.
func (c *Consumer) reject(ctx context.Context, msg jetstream.Msg, seq uint64, token, channel string, reason dlq.Reason, detail string, log *zap.Logger) {
	l := dlq.Letter{
		Token:         token,
		Channel:       channel,
		Body:          msg.Data(),
		Reason:        reason,
		Detail:        detail,
		SourceSeqs:    []uint64{seq},
		SourceSubject: msg.Subject(),
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.dead.Write(wctx, l); err != nil {
		log.Error("invalid event could not be dead-lettered; will retry", zap.Uint64("seq", seq), zap.String("reason", string(reason)), zap.Error(err))
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	c.invalid.WithLabelValues(string(reason)).Inc()
	log.Warn("invalid event dead-lettered", zap.Uint64("seq", seq), zap.String("subject", msg.Subject()), zap.String("reason", string(reason)), zap.String("detail", detail))
	if err := msg.Ack(); err != nil {
		log.Warn("ack of a dead-lettered event failed; it will come again and be dead-lettered again", zap.Uint64("seq", seq), zap.Error(err))
	}
}
