package topologytest

import (
	"context"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/broker/brokertest"
)

func TestEnsure(t *testing.T) {
	_, js := brokertest.Start(t).Connect()
	top := Ensure(t, js, 4)
	for _, name := range []string{top.Stream, top.DLQStream} {
		if _, err := js.Stream(context.Background(), name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	if top != New(4) {
		t.Errorf("Ensure returned %+v, want %+v", top, New(4))
	}
}

func TestStart(t *testing.T) {
	srv, js, top := Start(t, 2)
	if top != New(2) {
		t.Errorf("Start returned %+v, want %+v", top, New(2))
	}
	names := []string{top.Stream, top.DLQStream, top.AdvisoryStream()}
	for _, name := range names {
		if got := Stream(t, js, name).CachedInfo().Config.Name; got != name {
			t.Errorf("Stream(%s) is %s", name, got)
		}
	}
	if srv.Streams() != len(names) {
		t.Errorf("the server holds %d streams, want %d", srv.Streams(), len(names))
	}
}

func TestPull(t *testing.T) {
	_, js, top := Start(t, 1)
	cons, _ := Consumers(t, js, top, broker.ConsumerConfig{AckWait: time.Minute, MaxDeliver: 5, MaxAckPending: 100, PinnedTTL: time.Minute})
	for _, body := range []string{"a", "b"} {
		if _, err := js.Publish(context.Background(), top.EventSubject("c"), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if got := Pull(t, cons[0], 5, time.Second); len(got) != 2 || string(got[0].Data()) != "a" || string(got[1].Data()) != "b" {
		t.Fatalf("pulled %d messages, want a and b", len(got))
	}
	if got := Pull(t, cons[0], 5, 100*time.Millisecond); len(got) != 0 {
		t.Fatalf("pulled %d messages again before their ack wait", len(got))
	}
}
