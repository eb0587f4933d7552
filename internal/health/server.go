// Package health serves the operator endpoints: liveness on /healthz,
// readiness on /readyz and Prometheus metrics on /metrics.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/pprof"
	rpprof "runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/liverelay/liverelay/internal/graceful"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ShutdownTimeout bounds how long Serve waits for in-flight requests once
// its context is cancelled.
const ShutdownTimeout = 5 * time.Second

// Server is the health and metrics HTTP server. Listen binds it, so a busy
// port fails at start-up; Serve then runs it until its context ends.
type Server struct {
	ln    net.Listener
	srv   *http.Server
	ready atomic.Pointer[func() error]
	log   *zap.Logger
	mux   *http.ServeMux
}

// EnableProfiling serves Go's profiles under /debug/pprof/ (LIVE_PPROF). They reveal
// internals and cost CPU while taken: keep the address private. The command line
// (/debug/pprof/cmdline) is not served: secrets given as flags would be in it.
func (s *Server) EnableProfiling() {
	s.mux.HandleFunc("GET /debug/pprof/{$}", profileIndex)
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index) // named profiles: heap, goroutine, …
	s.mux.HandleFunc("GET /debug/pprof/cmdline", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusNotFound, "not served: the command line can hold secrets given as flags")
	})
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// profileIndex lists the profiles served, without the command line that pprof.Index
// links to.
func profileIndex(w http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	b.WriteString("<html><head><title>/debug/pprof/</title></head><body><p>Profiles:</p><ul>\n")
	for _, p := range rpprof.Profiles() {
		fmt.Fprintf(&b, "<li><a href=\"%s?debug=1\">%s</a> (%d)</li>\n", html.EscapeString(p.Name()), html.EscapeString(p.Name()), p.Count())
	}
	b.WriteString("<li><a href=\"profile\">profile</a> (CPU, ?seconds=N)</li>\n<li><a href=\"trace\">trace</a> (?seconds=N)</li>\n</ul></body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(b.String()))
}

// Listen binds addr (":0" picks a free port, see Addr) and returns a server,
// not ready, that exposes the metrics gathered by reg. The caller must call
// Serve or Close.
func Listen(addr string, reg prometheus.Gatherer, log *zap.Logger) (*Server, error) {
	if reg == nil {
		return nil, errors.New("health: nil prometheus gatherer")
	}
	if log == nil {
		log = zap.NewNop()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for health and metrics on %q: %w", addr, err)
	}
	log = log.With(zap.String("addr", ln.Addr().String()))
	errLog, err := zap.NewStdLogAt(log, zapcore.WarnLevel)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("health: error logger: %w", err)
	}

	mux := http.NewServeMux()
	s := &Server{ln: ln, log: log, mux: mux}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		reason := "starting"
		if check := s.ready.Load(); check != nil {
			err := (*check)()
			if err == nil {
				replyJSON(w, http.StatusOK, readiness{Status: "ready"})
				return
			}
			reason = err.Error()
		}
		replyJSON(w, http.StatusServiceUnavailable, readiness{Status: "not ready", Reason: reason})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      errLog,
		ErrorHandling: promhttp.ContinueOnError, // serve what could be gathered
		Timeout:       10 * time.Second,
	}))
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          errLog,
	}
	return s, nil
}

// Addr is the address the server listens on, with the port chosen when
// Listen was given port 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetReadiness makes /readyz answer 200 while check returns nil, and 503 with the
// error as the reason otherwise; before it is called, /readyz answers 503
// ("starting"). It is safe for concurrent use.
func (s *Server) SetReadiness(check func() error) { s.ready.Store(&check) }

// readiness is the body of /readyz.
type readiness struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Serve answers requests until ctx is cancelled, then shuts down gracefully
// within ShutdownTimeout and returns nil. It returns an error if serving
// fails or the shutdown deadline passes. Serve closes the listener.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Info("health and metrics server listening")
	return graceful.Serve(ctx, s.srv, s.ln, ShutdownTimeout, "health and metrics")
}

// Close releases the listener of a server whose Serve will not be called,
// for example when start-up fails after Listen.
func (s *Server) Close() error {
	return s.ln.Close()
}

func replyJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
