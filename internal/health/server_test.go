package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
)

// start listens on a free port and serves until the test ends, failing the
// test if Serve does not return nil after cancellation.
func start(t *testing.T, reg prometheus.Gatherer) (*Server, string) {
	t.Helper()
	s, err := Listen("127.0.0.1:0", reg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	stop := serve(s)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return s, "http://" + s.Addr()
}

// serve runs s.Serve until stop cancels it; stop reports an error from Serve, or
// that Serve did not return within ShutdownTimeout and a second.
func serve(s *Server) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("Serve after cancel = %v, want nil", err)
			}
			return nil
		case <-time.After(ShutdownTimeout + time.Second):
			return errors.New("Serve did not return after cancel")
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_test_events_total", Help: "test"})
	reg.MustRegister(counter)
	counter.Add(3)
	s, base := start(t, reg)

	var notReady error = errors.New("not connected to NATS")
	steps := []struct {
		name       string
		setReady   *error
		path       string
		wantStatus int
		wantBody   string // exact, or a substring for /metrics
	}{
		{name: "alive", path: "/healthz", wantStatus: 200, wantBody: "ok"},
		{name: "not ready at start", path: "/readyz", wantStatus: 503, wantBody: `{"status":"not ready","reason":"starting"}` + "\n"},
		{name: "ready", setReady: new(error(nil)), path: "/readyz", wantStatus: 200, wantBody: `{"status":"ready"}` + "\n"},
		{name: "alive while ready", path: "/healthz", wantStatus: 200, wantBody: "ok"},
		{name: "no longer ready", setReady: &notReady, path: "/readyz", wantStatus: 503, wantBody: `{"status":"not ready","reason":"not connected to NATS"}` + "\n"},
		{name: "metrics", path: "/metrics", wantStatus: 200, wantBody: "liverelay_test_events_total 3"},
		{name: "unknown path", path: "/nope", wantStatus: 404},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.setReady != nil {
				err := *st.setReady
				s.SetReadiness(func() error { return err })
			}
			status, body := get(t, base+st.path)
			if status != st.wantStatus {
				t.Errorf("GET %s status = %d, want %d", st.path, status, st.wantStatus)
			}
			switch {
			case st.wantBody == "":
			case st.path == "/metrics":
				if !strings.Contains(body, st.wantBody) {
					t.Errorf("GET /metrics body lacks %q:\n%s", st.wantBody, body)
				}
			case body != st.wantBody:
				t.Errorf("GET %s body = %q, want %q", st.path, body, st.wantBody)
			}
		})
	}
}

func TestOnlyGET(t *testing.T) {
	_, base := start(t, prometheus.NewRegistry())
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		t.Run(path, func(t *testing.T) {
			resp, err := http.Post(base+path, "text/plain", strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST %s status = %d, want 405", path, resp.StatusCode)
			}
		})
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	s, err := Listen("127.0.0.1:0", prometheus.NewRegistry(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	stop := serve(s)

	if status, _ := get(t, "http://"+addr+"/healthz"); status != http.StatusOK {
		t.Fatalf("GET /healthz status = %d before cancel", status)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Serve returned", addr)
	}
}

func TestServeCancelledBeforeStart(t *testing.T) {
	s, err := Listen("127.0.0.1:0", prometheus.NewRegistry(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Serve(ctx); err != nil {
		t.Errorf("Serve(cancelled) = %v, want nil", err)
	}
}

func TestListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name string
		addr string
		reg  prometheus.Gatherer
	}{
		{"port in use", busy.Addr().String(), prometheus.NewRegistry()},
		{"bad address", "127.0.0.1:http-ish", prometheus.NewRegistry()},
		{"nil gatherer", "127.0.0.1:0", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Listen(tt.addr, tt.reg, zaptest.NewLogger(t))
			if err == nil {
				s.Close()
				t.Fatalf("Listen(%q) succeeded", tt.addr)
			}
		})
	}
}

func TestCloseWithoutServe(t *testing.T) {
	s, err := Listen("127.0.0.1:0", prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Close", addr)
	}
}
