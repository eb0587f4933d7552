// Package topologytest gives tests liverelay's streams: the one topology the tests of
// every package set up, created on a test's server, and pulls from its partition
// consumers as a worker does. It is not in brokertest because the broker package's
// own tests use brokertest, which therefore cannot import broker.
package topologytest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/broker/brokertest"
)

// New is the tests' topology: events on LIVE_EVENTS (subjects live.events.*) in
// partitions partitions, dead letters on LIVE_DLQ (live.dlq.*), one replica, a
// one-minute de-duplication window and events kept an hour.
func New(partitions int) broker.Topology {
	return broker.Topology{Stream: "LIVE_EVENTS", Prefix: "live.events", DLQStream: "LIVE_DLQ", DLQPrefix: "live.dlq",
		Partitions: partitions, Replicas: 1, DuplicateWindow: time.Minute, MaxAge: time.Hour}
}

// Start starts a server (brokertest.Start), connects to it and creates
// New(partitions)'s streams on it; it returns the server, the connection's JetStream
// context and the topology.
func Start(t testing.TB, partitions int) (*brokertest.Server, jetstream.JetStream, broker.Topology) {
	t.Helper()
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	return srv, js, Ensure(t, js, partitions)
}

// Ensure creates New(partitions)'s streams on the server js reaches, within 30 s, and
// returns the topology; it fails t when it cannot.
func Ensure(t testing.TB, js jetstream.JetStream, partitions int) broker.Topology {
	t.Helper()
	top := New(partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := top.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	return top
}

// Consumers creates top's partition consumers with cc on the server js reaches, within
// 30 s, and returns them with top's event stream; it fails t when it cannot.
func Consumers(t testing.TB, js jetstream.JetStream, top broker.Topology, cc broker.ConsumerConfig) ([]jetstream.Consumer, jetstream.Stream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := top.EnsureConsumers(ctx, js, cc); err != nil {
		t.Fatal(err)
	}
	cons, err := top.PartitionConsumers(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	return cons, Stream(t, js, top.Stream)
}

// Stream returns the stream named name (the events, the dead letters, the advisories)
// on the server js reaches, within 30 s; it fails t when it cannot.
func Stream(t testing.TB, js jetstream.JetStream, name string) jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s
}

// Pull fetches up to n messages from a partition consumer as a worker does (in
// broker.PriorityGroup), waiting up to wait, and returns them unacked; it fails t when
// the pull fails, and logs what ended a batch early.
func Pull(t testing.TB, cons jetstream.Consumer, n int, wait time.Duration) []jetstream.Msg {
	t.Helper()
	batch, err := cons.Fetch(n, jetstream.FetchPriorityGroup(broker.PriorityGroup), jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	if err := batch.Error(); err != nil {
		t.Logf("the pull of %d messages ended with %d: %v", n, len(out), err)
	}
	return out
}

// PullExactly is Pull of n messages within 5 s that fails t unless all n came.
func PullExactly(t testing.TB, cons jetstream.Consumer, n int) []jetstream.Msg {
	t.Helper()
	out := Pull(t, cons, n, 5*time.Second)
	if len(out) != n {
		t.Fatalf("pulled %d messages, want %d", len(out), n)
	}
	return out
}
