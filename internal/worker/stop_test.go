package worker

import (
	"context"
	"io"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/config"
)

// A worker stopped while it is still setting up (SIGTERM right after start, as a
// supervisor may send) holds nothing yet: it stops cleanly, not with the error of the
// set-up call the stop interrupted.
func TestStoppedDuringSetUpStopsCleanly(t *testing.T) {
	srv := brokertest.Start(t)
	cfg := config.Default()
	cfg.NATSURL, cfg.HTTPAddr = srv.URL(), ""
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, cfg, "test", io.Discard, zaptest.NewLogger(t)); err != nil {
		t.Errorf("a worker stopped during set-up returned %v, want a clean stop", err)
	}
}
