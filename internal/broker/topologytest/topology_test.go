package topologytest

import (
	"context"
	"testing"

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
