package ingest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/liverelay/liverelay/internal/graceful"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ShutdownTimeout bounds how long Serve waits, once stopped, for requests being
// stored to finish.
const ShutdownTimeout = 15 * time.Second

// TLS names the PEM certificate and key the ingest serves HTTPS with; empty serves
// plain HTTP (behind a proxy that terminates TLS, or on a private network).
type TLS struct {
	CertFile string
	KeyFile  string
}

// Server is the ingest's HTTP listener.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *zap.Logger
}

// Listen opens addr for h, with TLS when t names a certificate.
func Listen(addr string, t TLS, h http.Handler, log *zap.Logger) (*Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	var tlsConfig *tls.Config
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("ingest TLS certificate (LIVE_INGEST_TLS_CERT, LIVE_INGEST_TLS_KEY): %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for the ingest on %q: %w", addr, err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	log = log.With(zap.String("addr", ln.Addr().String()), zap.Bool("tls", tlsConfig != nil))
	errLog, err := zap.NewStdLogAt(log, zapcore.WarnLevel)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("ingest: error logger: %w", err)
	}
	return &Server{ln: ln, log: log, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
	}}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers requests until ctx is done; then it stops taking requests and waits
// up to ShutdownTimeout for those being stored, so that none is cut off between its
// events and its answer.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Info("Pusher-compatible ingest listening")
	if err := graceful.Serve(ctx, s.srv, s.ln, ShutdownTimeout, "the ingest"); err != nil {
		return err
	}
	s.log.Info("ingest stopped")
	return nil
}

// Close closes the listener of a server that is not serving.
func (s *Server) Close() error { return s.ln.Close() }
