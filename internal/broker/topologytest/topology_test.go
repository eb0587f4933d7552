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
