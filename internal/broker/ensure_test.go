package broker

import (
	"context"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/broker/brokertest"
)

// A worker that starts on streams that already have its settings leaves them alone:
// the server rewrites a stream's stored configuration on every update, even to the same
// settings, while other workers starting at the same moment create consumers on it. A
// changed setting still updates the stream.
func TestEnsureUpdatesAStreamOnlyWhenItsSettingsDiffer(t *testing.T) {
	srv := brokertest.Start(t)
	nc, js := srv.Connect()
	ctx := context.Background()
	updated, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.>")
	if err != nil {
		t.Fatal(err)
	}
	top := testTopology(4)
	if err := top.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	if err := top.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := updated.NextMsg(500 * time.Millisecond); err == nil {
		t.Errorf("ensuring unchanged streams updated one: %s", m.Subject)
	}

	top.MaxAge = 2 * time.Hour
	if err := top.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	m, err := updated.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("a changed MaxAge did not update the stream: %v", err)
	}
	if want := "$JS.EVENT.ADVISORY.STREAM.UPDATED." + top.Stream; m.Subject != want {
		t.Errorf("updated %s, want %s", m.Subject, want)
	}
	s, err := js.Stream(ctx, top.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 2*time.Hour {
		t.Errorf("the stream keeps events %v, want 2h", got)
	}
}
