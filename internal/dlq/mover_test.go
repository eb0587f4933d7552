package dlq

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/broker/topologytest"
)

// A message that a worker receives but never acks — as if it crashed the worker on
// every delivery — reaches the dead-letter stream once JetStream gives up on it, even
// though the mover starts only after the advisory was sent.
func TestMoverDeadLettersMessagesJetStreamGaveUpOn(t *testing.T) {
	_, js, top := topologytest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, _ := topologytest.Consumers(t, js, top, broker.ConsumerConfig{AckWait: time.Second, MaxDeliver: 2, MaxAckPending: 10, PinnedTTL: 5 * time.Second})
	body := []byte(`{"v":1,"channel":"poison","renders":{"p":{"show":true,"content":"<p>boom</p>"}}}`)
	ack, err := js.Publish(ctx, top.EventSubject("poison"), body)
	if err != nil {
		t.Fatal(err)
	}
	// Two deliveries, never acked.
	for i := 0; i < 2; i++ {
		if n := len(topologytest.Pull(t, cons[0], 1, 5*time.Second)); n != 1 {
			t.Fatalf("delivery %d: got %d messages", i+1, n)
		}
	}
	// The server sends the advisory when, after the last delivery's ack wait, it would
	// deliver the message again: a worker is still pulling.
	if msgs := topologytest.Pull(t, cons[0], 1, 3*time.Second); len(msgs) != 0 {
		t.Fatal("a third delivery past MaxDeliver")
	}
	advStream := topologytest.Stream(t, js, top.AdvisoryStream())
	brokertest.WaitFor(t, 20*time.Second, "the advisory", func() bool {
		info, err := advStream.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})

	advCons, err := top.EnsureAdvisoryConsumer(ctx, js, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	events := topologytest.Stream(t, js, top.Stream)
	m := NewMover(advCons, events, NewWriter(js, top.DLQPrefix, prometheus.NewRegistry()), LastToken, zaptest.NewLogger(t))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()

	dlqStream := topologytest.Stream(t, js, top.DLQStream)
	brokertest.WaitFor(t, 20*time.Second, "the letter", func() bool {
		info, err := dlqStream.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	letter, err := dlqStream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(letter.Data) != string(body) || letter.Subject != "live.dlq.poison" ||
		Reason(letter.Header.Get(HeaderReason)) != ReasonMaxDeliveries || letter.Header.Get(HeaderAttempts) != "2" {
		t.Fatalf("letter %s %v %s", letter.Subject, letter.Header, letter.Data)
	}
	if seqs, err := ParseSeqs(letter.Header.Get(HeaderSourceSeqs)); err != nil || len(seqs) != 1 || seqs[0] != ack.Sequence {
		t.Fatalf("source seqs %v %v, want [%d]", seqs, err, ack.Sequence)
	}
}
