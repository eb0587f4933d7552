package consumer

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/broker/topologytest"
	"github.com/liverelay/liverelay/internal/dlq"
)

// gatherRig is a one-partition event stream whose consumer another client, the
// previous owner, pulls first; then this package's Consumer takes the partition over.
type gatherRig struct {
	t       *testing.T
	nc      *nats.Conn
	js      jetstream.JetStream
	top     broker.Topology
	cc      broker.ConsumerConfig
	cons    jetstream.Consumer
	stream  jetstream.Stream
	reorder prometheus.Counter
}

func newGatherRig(t *testing.T, ackWait time.Duration, posts ...string) *gatherRig {
	srv := brokertest.Start(t)
	nc, js := srv.Connect()
	top := topologytest.Ensure(t, js, 1)
	cc := broker.ConsumerConfig{AckWait: ackWait, MaxDeliver: 5, MaxAckPending: 100, PinnedTTL: ackWait + 2*time.Second}
	cons, stream := topologytest.Consumers(t, js, top, cc)
	for _, post := range posts {
		publish(t, js, top, "live", post)
	}
	return &gatherRig{t: t, nc: nc, js: js, top: top, cc: cc, cons: cons[0], stream: stream}
}

// previousOwnerReceives pulls n messages as the partition's pinned client and returns
// them unacked.
func (r *gatherRig) previousOwnerReceives(n int) []jetstream.Msg {
	r.t.Helper()
	batch, err := r.cons.Fetch(n, jetstream.FetchPriorityGroup(broker.PriorityGroup), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		r.t.Fatal(err)
	}
	var held []jetstream.Msg
	for m := range batch.Messages() {
		held = append(held, m)
	}
	if len(held) != n {
		r.t.Fatalf("the previous owner received %d messages, want %d", len(held), n)
	}
	return held
}

// markInProgress marks msgs in progress and makes sure the server has the marks.
func (r *gatherRig) markInProgress(msgs ...jetstream.Msg) {
	r.t.Helper()
	for _, m := range msgs {
		if err := m.InProgress(); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := r.nc.Flush(); err != nil {
		r.t.Fatal(err)
	}
}

// nextOwner runs a Consumer that takes the partition over, feeding sub, until the
// test ends.
func (r *gatherRig) nextOwner(sub *submitter) {
	t := r.t
	cfg := Config{Self: "next", PullBatch: 10, PullExpiry: time.Second, PinnedTTL: r.cc.PinnedTTL, HandoverTimeout: time.Second, AckWait: r.cc.AckWait}
	reg := prometheus.NewRegistry()
	c, err := New(cfg, Deps{Conn: r.nc, JetStream: r.js, Stream: r.stream, Topology: r.top, Group: soloGroup{"next"},
		Ownership: NewOwnership(cfg), Relay: sub, DeadLetters: dlq.NewWriter(r.js, r.top.DLQPrefix, reg), Registry: reg, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r.reorder = c.metrics.reordered
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// A dead owner's messages fall due in the order they were last marked in progress, and
// the server delivers them again in that order, not in stream order: the ones the owner
// kept in progress through a long retry fall due after newer ones of their channel that
// it received and never marked. The next owner gathers what was outstanding and hands
// it to the relay in stream order, so that an older new post is not put above a newer
// one on readers' pages.
func TestOutstandingMessagesReachTheRelayInStreamOrder(t *testing.T) {
	r := newGatherRig(t, 2*time.Second, "first", "second", "third", "fourth")
	held := r.previousOwnerReceives(4)
	time.Sleep(time.Second) // the first two are retried a while
	r.markInProgress(held[:2]...)
	// The previous owner dies here.

	sub := &submitter{}
	r.nextOwner(sub)
	waitFor(t, "the next owner to take the four messages", func() bool { return len(sub.taken()) >= 4 })
	want := []string{"live/first", "live/second", "live/third", "live/fourth"}
	if got := sub.taken(); !slices.Equal(got, want) {
		t.Errorf("the relay got %v, want them in stream order %v", got, want)
	}
	var m dto.Metric
	if err := r.reorder.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 1 {
		t.Errorf("liverelay_partition_takeovers_reordered_total = %v, want 1", n)
	}
}

// A message counted as outstanding that does not come (its previous owner, alive, still
// keeps it in progress) holds the others back for gatherTimeout only, not until it is
// due.
func TestGatheringGivesUpOnAMessageThatDoesNotCome(t *testing.T) {
	r := newGatherRig(t, 2*time.Second, "kept", "second", "third")
	held := r.previousOwnerReceives(3)
	stopMarking := make(chan struct{})
	marked := make(chan struct{})
	go func() {
		defer close(marked)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopMarking:
				return
			case <-tick.C:
				_ = held[0].InProgress()
			}
		}
	}()

	sub := &submitter{}
	r.nextOwner(sub)
	waitFor(t, "the next owner to take the two messages that came", func() bool { return len(sub.taken()) >= 2 })
	close(stopMarking)
	<-marked
	waitFor(t, "the kept message to come once it is due", func() bool { return len(sub.taken()) >= 3 })
	want := []string{"live/second", "live/third", "live/kept"}
	if got := sub.taken(); !slices.Equal(got, want) {
		t.Errorf("the relay got %v, want %v", got, want)
	}
}
