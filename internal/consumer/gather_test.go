package consumer

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/broker/topologytest"
	"github.com/liverelay/liverelay/internal/dlq"
)

// gatherRig is a one-partition event stream whose consumer another client, the
// previous owner, pulls first; then this package's Consumer takes the partition over.
type gatherRig struct {
	t    *testing.T
	js   jetstream.JetStream
	top  broker.Topology
	cc   broker.ConsumerConfig
	cons jetstream.Consumer
	next *Consumer // the next owner, once started
}

func newGatherRig(t *testing.T, ackWait time.Duration, posts ...string) *gatherRig {
	_, js, top := topologytest.Start(t, 1)
	cc := broker.ConsumerConfig{AckWait: ackWait, MaxDeliver: 5, MaxAckPending: 100, PinnedTTL: ackWait + 2*time.Second}
	cons, _ := topologytest.Consumers(t, js, top, cc)
	for _, post := range posts {
		publish(t, js, top, "live", post)
	}
	return &gatherRig{t: t, js: js, top: top, cc: cc, cons: cons[0]}
}

// previousOwnerReceives pulls n messages as the partition's pinned client and returns
// them unacked.
func (r *gatherRig) previousOwnerReceives(n int) []jetstream.Msg {
	r.t.Helper()
	return topologytest.PullExactly(r.t, r.cons, n)
}

// markInProgress marks msgs in progress and makes sure the server has the marks.
func (r *gatherRig) markInProgress(msgs ...jetstream.Msg) {
	r.t.Helper()
	for _, m := range msgs {
		if err := m.InProgress(); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := r.js.Conn().Flush(); err != nil {
		r.t.Fatal(err)
	}
}

// nextOwner runs a Consumer that takes the partition over, feeding sub, until the
// test ends.
func (r *gatherRig) nextOwner(sub *submitter) {
	t := r.t
	cfg := testConfig()
	cfg.AckWait, cfg.PinnedTTL, cfg.HandoverTimeout = r.cc.AckWait, r.cc.PinnedTTL, time.Second
	reg := prometheus.NewRegistry()
	c, err := New(cfg, testDeps(t, r.js, r.top, cfg, sub, dlq.NewWriter(r.js, r.top.DLQPrefix, reg), reg))
	if err != nil {
		t.Fatal(err)
	}
	r.next = c
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

// taken waits up to 15 s for sub to have taken n messages.
func taken(t *testing.T, sub *submitter, n int, what string) {
	t.Helper()
	brokertest.WaitFor(t, 15*time.Second, what, func() bool { return len(sub.taken()) >= n })
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
	taken(t, sub, 4, "the next owner to take the four messages")
	want := []string{"live/first", "live/second", "live/third", "live/fourth"}
	if got := sub.taken(); !slices.Equal(got, want) {
		t.Errorf("the relay got %v, want them in stream order %v", got, want)
	}
	if n := counterValue(t, r.next.metrics.reordered); n != 1 {
		t.Errorf("liverelay_partition_takeovers_reordered_total = %v, want 1", n)
	}
}

// keepInProgress marks msg in progress every 500 ms, as an owner still alive does
// with a message whose publish it retries, until the returned stop is called.
func keepInProgress(msg jetstream.Msg) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// nextOwnerWhileFirstIsHeld has the previous owner receive the rig's three messages
// and keep the first in progress, as an owner still alive does while it retries its
// publish; starts the next owner; and returns once the next owner counts a hand-over
// of kind. stop makes the previous owner let go of the first message.
func (r *gatherRig) nextOwnerWhileFirstIsHeld(kind string) (sub *submitter, first jetstream.Msg, stop func()) {
	held := r.previousOwnerReceives(3)
	stop = keepInProgress(held[0])
	sub = &submitter{}
	r.nextOwner(sub)
	handovers := r.next.metrics.handovers.WithLabelValues(kind)
	brokertest.WaitFor(r.t, 15*time.Second, "a hand-over of kind "+kind, func() bool { return counterValue(r.t, handovers) >= 1 })
	return sub, held[0], stop
}

// A message still held by another client that is alive (a previous owner that keeps it
// in progress) is not overtaken: the next owner gathers what came, asks the server
// when the gather time is up, pauses the partition leaving everything unacked, and
// takes it all in stream order once the message is due.
func TestMessageHeldElsewhereIsNotOvertaken(t *testing.T) {
	r := newGatherRig(t, 2*time.Second, "kept", "second", "third")
	sub, _, stop := r.nextOwnerWhileFirstIsHeld("contested")
	if got := sub.taken(); len(got) != 0 {
		t.Fatalf("the relay got %v while the kept message was outstanding elsewhere", got)
	}
	stop() // the previous owner lets go
	taken(t, sub, 3, "the next owner to take the three messages")
	want := []string{"live/kept", "live/second", "live/third"}
	if got := sub.taken(); !slices.Equal(got, want) {
		t.Errorf("the relay got %v, want them in stream order %v", got, want)
	}
}

// A message counted as outstanding that its holder acks meanwhile does not hold the
// others back: when the gather time is up the server counts it no more, and what came
// goes on.
func TestGatheringHandsOnWhatCameWhenTheRestWasAcked(t *testing.T) {
	r := newGatherRig(t, 2*time.Second, "acked", "second", "third")
	sub, first, stop := r.nextOwnerWhileFirstIsHeld("acquired")
	stop()
	if err := first.Ack(); err != nil {
		t.Fatal(err)
	}
	taken(t, sub, 2, "the next owner to take the two messages that came")
	time.Sleep(r.cc.AckWait + time.Second) // the acked one must not come
	want := []string{"live/second", "live/third"}
	if got := sub.taken(); !slices.Equal(got, want) {
		t.Errorf("the relay got %v, want %v", got, want)
	}
	if n := counterValue(t, r.next.metrics.handovers.WithLabelValues("contested")); n != 0 {
		t.Errorf("the partition was paused %v times, though nothing was outstanding elsewhere", n)
	}
}

// What a gathering whose time is up counts as still held by another client: the
// ack-pending count less what it gathered and what was delivered here after its last
// one (on its way); a state that could not be read counts as some, so that the
// partition pauses rather than let newer messages overtake.
func TestOutstandingElsewhere(t *testing.T) {
	info := func(ackPending int, delivered uint64) *jetstream.ConsumerInfo {
		return &jetstream.ConsumerInfo{NumAckPending: ackPending, Delivered: jetstream.SequenceInfo{Consumer: delivered}}
	}
	tests := []struct {
		name     string
		info     *jetstream.ConsumerInfo
		gathered int
		highest  uint64
		want     int
	}{
		{"unknown state", nil, 2, 10, 1},
		{"all gathered", info(3, 10), 3, 10, 0},
		{"one held elsewhere", info(3, 10), 2, 10, 1},
		{"the missing one is on its way here", info(3, 11), 2, 10, 0},
		{"acked meanwhile", info(2, 10), 2, 10, 0},
		{"more on their way than pending", info(2, 15), 2, 10, 0},
	}
	for _, tt := range tests {
		if got := outstandingElsewhere(tt.info, tt.gathered, tt.highest); got != tt.want {
			t.Errorf("%s: %d outstanding elsewhere, want %d", tt.name, got, tt.want)
		}
	}
}
