package broker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/broker/brokertest"
)

// streamUpdates follows the server's advisories of updated streams (key-value buckets
// are streams too).
type streamUpdates struct {
	t   *testing.T
	nc  *nats.Conn
	sub *nats.Subscription
}

func watchStreamUpdates(t *testing.T, nc *nats.Conn) *streamUpdates {
	sub, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.>")
	if err != nil {
		t.Fatal(err)
	}
	return &streamUpdates{t: t, nc: nc, sub: sub}
}

// none fails the test if any stream was updated.
func (u *streamUpdates) none(what string) {
	u.t.Helper()
	if err := u.nc.Flush(); err != nil {
		u.t.Fatal(err)
	}
	if m, err := u.sub.NextMsg(500 * time.Millisecond); err == nil {
		u.t.Errorf("%s updated a stream: %s", what, m.Subject)
	}
}

// next fails the test unless stream is the next one updated.
func (u *streamUpdates) next(stream, what string) {
	u.t.Helper()
	m, err := u.sub.NextMsg(5 * time.Second)
	if err != nil {
		u.t.Fatalf("%s did not update stream %s: %v", what, stream, err)
	}
	if want := "$JS.EVENT.ADVISORY.STREAM.UPDATED." + stream; m.Subject != want {
		u.t.Errorf("%s updated %s, want %s", what, m.Subject, want)
	}
}

// A worker that starts on streams that already have its settings leaves them alone:
// the server rewrites a stream's stored configuration on every update, even to the same
// settings, while other workers starting at the same moment create consumers on it. A
// changed setting still updates the stream.
func TestEnsureUpdatesAStreamOnlyWhenItsSettingsDiffer(t *testing.T) {
	srv := brokertest.Start(t)
	nc, js := srv.Connect()
	ctx := context.Background()
	updates := watchStreamUpdates(t, nc)
	top := testTopology(4)
	for range 2 {
		if err := top.Ensure(ctx, js); err != nil {
			t.Fatal(err)
		}
	}
	updates.none("ensuring unchanged streams")

	top.MaxAge = 2 * time.Hour
	if err := top.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	updates.next(top.Stream, "a changed MaxAge")
	s, err := js.Stream(ctx, top.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 2*time.Hour {
		t.Errorf("the stream keeps events %v, want 2h", got)
	}
}

// The same for the key-value buckets (the fence's, the worker group's).
func TestEnsureKeyValueUpdatesABucketOnlyWhenItsSettingsDiffer(t *testing.T) {
	srv := brokertest.Start(t)
	nc, js := srv.Connect()
	ctx := context.Background()
	updates := watchStreamUpdates(t, nc)
	cfg := jetstream.KeyValueConfig{Bucket: "B", Description: "a bucket", History: 1, TTL: time.Hour,
		LimitMarkerTTL: time.Minute, Storage: jetstream.FileStorage}
	for range 2 {
		if _, err := EnsureKeyValue(ctx, js, cfg); err != nil {
			t.Fatal(err)
		}
	}
	updates.none("opening an unchanged bucket")

	cfg.TTL = 2 * time.Hour
	kv, err := EnsureKeyValue(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	updates.next("KV_B", "a changed TTL")
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != 2*time.Hour {
		t.Errorf("the bucket keeps values %v, want 2h", st.TTL())
	}
}

// The same for the partition consumers and the advisory consumer: a second worker's
// set-up sends no create request for consumers that have their settings, and a changed
// ack wait still updates them.
func TestEnsureConsumersUpdatesOnlyWhenTheirSettingsDiffer(t *testing.T) {
	srv := brokertest.Start(t)
	nc, js := srv.Connect()
	ctx := context.Background()
	top := testTopology(2)
	if err := top.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	creates, err := nc.SubscribeSync("$JS.API.CONSUMER.CREATE.>")
	if err != nil {
		t.Fatal(err)
	}
	setUp := func(cc ConsumerConfig) {
		t.Helper()
		if err := top.EnsureConsumers(ctx, js, cc); err != nil {
			t.Fatal(err)
		}
		if _, err := top.EnsureAdvisoryConsumer(ctx, js, cc.AckWait); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		n := 0
		for {
			if _, err := creates.NextMsg(200 * time.Millisecond); err != nil {
				return n
			}
			n++
		}
	}
	cc := ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 5, MaxAckPending: 100, PinnedTTL: 10 * time.Second}
	setUp(cc)
	if n := count(); n != 3 {
		t.Fatalf("the first set-up sent %d create requests, want 3 (two partitions, the advisories)", n)
	}
	setUp(cc)
	if n := count(); n != 0 {
		t.Errorf("setting up unchanged consumers sent %d create requests, want none", n)
	}
	cc.AckWait = 6 * time.Second
	setUp(cc)
	if n := count(); n != 3 {
		t.Errorf("a changed ack wait sent %d create requests, want 3", n)
	}
}
