package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Timings of the mover.
const (
	// MoverAckWait is the ack wait of the advisory consumer the movers share
	// (broker.Topology.EnsureAdvisoryConsumer): an advisory not acked within it, its
	// mover dead or stuck, goes to another. It exceeds moverWriteTimeout.
	MoverAckWait = 30 * time.Second
	// moverWriteTimeout bounds reading one message and writing its letter; a failure
	// hands the advisory back after moverRetryDelay.
	moverWriteTimeout = 10 * time.Second
	moverRetryDelay   = 5 * time.Second
)

// Mover copies the messages named by the server's max-deliveries advisories from the
// event stream to the dead-letter stream. Every worker runs one on the same durable
// consumer, so each advisory is handled once, even if the worker that saw the last
// delivery died.
type Mover struct {
	advisories jetstream.Consumer
	events     jetstream.Stream
	writer     *Writer
	token      func(subject string) string // the channel token of a stored subject
	log        *zap.Logger
}

// NewMover returns a mover. token maps a stored event subject to its channel token.
func NewMover(advisories jetstream.Consumer, events jetstream.Stream, w *Writer, token func(string) string, log *zap.Logger) *Mover {
	return &Mover{advisories: advisories, events: events, writer: w, token: token, log: log}
}

type advisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// Run moves messages until ctx is cancelled.
func (m *Mover) Run(ctx context.Context) error {
	cc, err := m.advisories.Consume(func(msg jetstream.Msg) { m.handle(ctx, msg) },
		jetstream.PullMaxMessages(16), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("consume max-deliveries advisories: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	return nil
}

func (m *Mover) handle(ctx context.Context, msg jetstream.Msg) {
	var a advisory
	if err := json.Unmarshal(msg.Data(), &a); err != nil || a.StreamSeq == 0 {
		m.log.Error("unreadable max-deliveries advisory; dropped", zap.ByteString("advisory", msg.Data()), zap.Error(err))
		_ = msg.Term()
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), moverWriteTimeout)
	defer cancel()
	if err := m.move(wctx, a); err != nil {
		m.log.Error("could not dead-letter a message JetStream gave up on; will retry", zap.Uint64("seq", a.StreamSeq), zap.Error(err))
		_ = msg.NakWithDelay(moverRetryDelay)
		return
	}
	_ = msg.Ack()
}

func (m *Mover) move(ctx context.Context, a advisory) error {
	raw, err := m.events.GetMsg(ctx, a.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		m.log.Warn("message JetStream gave up on is gone from the stream (aged out?)", zap.Uint64("seq", a.StreamSeq))
		return nil
	}
	if err != nil {
		return fmt.Errorf("read message %d: %w", a.StreamSeq, err)
	}
	token := m.token(raw.Subject)
	l := Letter{
		Token:         token,
		Body:          raw.Data,
		Reason:        ReasonMaxDeliveries,
		Detail:        fmt.Sprintf("consumer %s delivered it %d times without an ack (MaxDeliver); the worker may have crashed on it", a.Consumer, a.Deliveries),
		Attempts:      int(a.Deliveries),
		LastFailure:   time.Now(),
		SourceSeqs:    []uint64{a.StreamSeq},
		SourceSubject: raw.Subject,
	}
	if err := m.writer.Write(ctx, l); err != nil {
		return err
	}
	m.log.Warn("dead-lettered a message JetStream gave up on", zap.Uint64("seq", a.StreamSeq), zap.String("subject", raw.Subject), zap.Uint64("deliveries", a.Deliveries))
	return nil
}

// LastToken is a token function for subjects whose last token is the channel token.
func LastToken(subject string) string {
	if i := strings.LastIndexByte(subject, '.'); i >= 0 {
		return subject[i+1:]
	}
	return subject
}
