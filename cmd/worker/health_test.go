package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/health"
)

// worker health exits 0 while the worker on LIVE_HTTP_ADDR answers 200 on the
// endpoint asked, 1 when it answers otherwise or nothing listens, 2 for a bad flag.
func TestHealthCommand(t *testing.T) {
	hs, err := health.Listen("127.0.0.1:0", prometheus.NewRegistry(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-served })
	var ready atomic.Bool
	hs.SetReadiness(func() error {
		if ready.Load() {
			return nil
		}
		return errors.New("not consuming")
	})
	t.Setenv("LIVE_HTTP_ADDR", hs.Addr())

	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := dispatch(context.Background(), append([]string{"health"}, args...), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := run(); code != 1 || !strings.Contains(out, "not consuming") {
		t.Errorf("not ready: exit %d, output %q; want 1 and the reason", code, out)
	}
	if code, out := run("--path", "/healthz"); code != 0 {
		t.Errorf("alive: exit %d, output %q; want 0", code, out)
	}
	ready.Store(true)
	if code, out := run(); code != 0 || !strings.Contains(out, "ready") {
		t.Errorf("ready: exit %d, output %q; want 0", code, out)
	}
	if code, out := run("--path", "/metrics"); code != 2 {
		t.Errorf("--path /metrics: exit %d, output %q; want 2", code, out)
	}
	// Nothing listens there any more.
	cancel()
	<-served
	served <- nil
	if code, out := run(); code != 1 {
		t.Errorf("no worker: exit %d, output %q; want 1", code, out)
	}
}

func TestHealthURL(t *testing.T) {
	for addr, want := range map[string]string{
		":9090": "http://127.0.0.1:9090/readyz", "0.0.0.0:9090": "http://127.0.0.1:9090/readyz",
		"[::]:9090": "http://[::1]:9090/readyz", "10.1.2.3:8080": "http://10.1.2.3:8080/readyz",
	} {
		if got, err := healthURL(addr, "/readyz"); err != nil || got != want {
			t.Errorf("healthURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := healthURL("", "/readyz"); err == nil || !strings.Contains(err.Error(), "LIVE_HTTP_ADDR") {
		t.Errorf("empty address: %v, want an error naming LIVE_HTTP_ADDR", err)
	}
}
