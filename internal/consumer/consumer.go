// Package consumer pulls events from the partition consumers of LIVE_EVENTS, decodes
// and validates them, dead-letters the bad ones, and hands the good ones to the relay.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// ReasonPanic marks a message whose handling panicked.
const ReasonPanic = "handler-panic"

// Submitter takes valid events; it acks them once delivered.
type Submitter interface {
	Submit(ctx context.Context, in relay.Input) error
}

// DeadLetters stores events that are not valid.
type DeadLetters interface {
	Write(ctx context.Context, l dlq.Letter) error
}

// Config tunes pulling.
type Config struct {
	PullBatch  int           // messages buffered per partition
	PullExpiry time.Duration // how long one pull request waits on the server
}

// Consumer reads every partition given to it.
type Consumer struct {
	nc        *nats.Conn
	cfg       Config
	top       broker.Topology
	consumers []jetstream.Consumer
	relay     Submitter
	dead      DeadLetters
	log       *zap.Logger
	invalid   *prometheus.CounterVec
	onReady   func()
}

// New returns a consumer of the given partition consumers. onReady, if not nil, is
// called once every partition is being consumed.
func New(nc *nats.Conn, cfg Config, top broker.Topology, consumers []jetstream.Consumer, r Submitter, dead DeadLetters,
	reg prometheus.Registerer, log *zap.Logger, onReady func()) *Consumer {
	invalid := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "liverelay_invalid_events_total",
		Help: "Messages that were not valid events and went to the dead-letter stream, by reason.",
	}, []string{"reason"})
	reg.MustRegister(invalid)
	return &Consumer{nc: nc, cfg: cfg, top: top, consumers: consumers, relay: r, dead: dead, log: log, invalid: invalid, onReady: onReady}
}

// Run consumes until ctx is cancelled, then stops pulling and waits for the message
// handlers to return.
func (c *Consumer) Run(ctx context.Context) error {
	var ccs []jetstream.ConsumeContext
	stopAll := func() {
		for _, cc := range ccs {
			cc.Stop()
		}
		for _, cc := range ccs {
			<-cc.Closed()
		}
	}
	var handlers sync.WaitGroup
	for _, cons := range c.consumers {
		name := cons.CachedInfo().Name
		log := c.log.With(zap.String("consumer", name))
		cc, err := cons.Consume(func(msg jetstream.Msg) {
			handlers.Add(1)
			defer handlers.Done()
			c.handle(ctx, msg, log)
		},
			jetstream.PullPriorityGroup(broker.PriorityGroup),
			jetstream.PullMaxMessages(c.cfg.PullBatch),
			jetstream.PullExpiry(c.cfg.PullExpiry),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if !errors.Is(err, jetstream.ErrNoHeartbeat) {
					log.Warn("consume", zap.Error(err))
				}
			}),
		)
		if err != nil {
			stopAll()
			return fmt.Errorf("consume %s: %w", name, err)
		}
		ccs = append(ccs, cc)
	}
	c.log.Info("consuming", zap.Int("partitions", len(ccs)))
	if c.onReady != nil {
		c.onReady()
	}
	<-ctx.Done()
	stopAll()
	handlers.Wait()
	return nil
}

// handle takes one message: a valid event goes to the relay, anything else to the
// dead-letter stream (and is then acked). A panic is caught and dead-lettered: one bad
// message must not stop the worker.
func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg, log *zap.Logger) {
	meta, err := msg.Metadata()
	if err != nil {
		log.Error("message without JetStream metadata", zap.String("subject", msg.Subject()), zap.Error(err))
		return
	}
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic while handling a message", zap.Uint64("seq", meta.Sequence.Stream), zap.Any("panic", p), zap.Stack("stack"))
			_, token, _ := c.top.SplitSubject(msg.Subject())
			c.reject(ctx, msg, meta.Sequence.Stream, token, "", ReasonPanic, fmt.Sprint(p), log)
		}
	}()
	_, token, err := c.top.SplitSubject(msg.Subject())
	if err != nil {
		c.reject(ctx, msg, meta.Sequence.Stream, "", "", "invalid-subject", err.Error(), log)
		return
	}
	ev, err := event.Decode(msg.Data())
	if err != nil {
		reason, detail := event.ReasonMalformed, err.Error()
		var e *event.Error
		if errors.As(err, &e) {
			reason, detail = e.Reason, e.Detail
		}
		c.reject(ctx, msg, meta.Sequence.Stream, token, "", reason, detail, log)
		return
	}
	if want := event.Token(ev.Channel); want != token {
		c.reject(ctx, msg, meta.Sequence.Stream, token, ev.Channel, event.ReasonSubjectMismatch,
			fmt.Sprintf("channel %q belongs on subject token %q, but came on %q", ev.Channel, want, token), log)
		return
	}
	in := relay.Input{Event: ev, Token: token, Subject: msg.Subject(), Seq: meta.Sequence.Stream, Msg: acker{nc: c.nc, reply: msg.Reply()}}
	if err := c.relay.Submit(ctx, in); err != nil {
		// Not taken (shutting down): left unacked, JetStream delivers it again.
		log.Debug("event not taken", zap.Uint64("seq", meta.Sequence.Stream), zap.Error(err))
	}
}

// reject dead-letters a message that is not a valid event, then acks it. If the
// dead-letter write fails the message is not acked but handed back for a later try.
func (c *Consumer) reject(ctx context.Context, msg jetstream.Msg, seq uint64, token, channel, reason, detail string, log *zap.Logger) {
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
		log.Error("invalid event could not be dead-lettered; will retry", zap.Uint64("seq", seq), zap.String("reason", reason), zap.Error(err))
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	c.invalid.WithLabelValues(reason).Inc()
	log.Warn("invalid event dead-lettered", zap.Uint64("seq", seq), zap.String("subject", msg.Subject()), zap.String("reason", reason), zap.String("detail", detail))
	if err := msg.Ack(); err != nil {
		log.Warn("ack of a dead-lettered event failed; it will come again and be dead-lettered again", zap.Uint64("seq", seq), zap.Error(err))
	}
}
