// Package broker is liverelay's side of NATS JetStream: the embedded server used when
// no NATS is configured, the client connection, and the streams and consumers that
// carry events, dead letters and partitions.
package broker

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
)

// EmbeddedConfig configures the JetStream server the worker runs in-process.
type EmbeddedConfig struct {
	Listen  string // host:port; port 0 picks a free one, port -1 listens nowhere but in-process
	DataDir string
	// Sync is "always" (fsync every write: nothing acknowledged is lost on an OS
	// crash) or an interval such as "2m" (nats-server's default, faster).
	Sync string
}

// Embedded is an in-process nats-server with JetStream.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts the server and waits until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig, log *zap.Logger) (*Embedded, error) {
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS listen port %q: %w", portText, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "liverelay-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		NoSigs:     true,
		NoLog:      true,
	}
	switch cfg.Sync {
	case "", "always":
		opts.SyncAlways = true
	default:
		d, err := time.ParseDuration(cfg.Sync)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("embedded NATS sync %q: want \"always\" or an interval such as 2m", cfg.Sync)
		}
		opts.SyncInterval = d
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	srv.SetLoggerV2(zapLogger{log.Named("nats-server").Sugar()}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not start listening on %s within 30s (is the port in use? set LIVE_EMBEDDED_LISTEN)", cfg.Listen)
	}
	log.Info("embedded NATS JetStream started", zap.String("url", srv.ClientURL()), zap.String("data_dir", cfg.DataDir), zap.String("sync", cfg.Sync))
	return &Embedded{srv: srv}, nil
}

// ClientURL is the URL clients connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has stopped.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// zapLogger routes nats-server's log lines into zap.
type zapLogger struct{ s *zap.SugaredLogger }

func (l zapLogger) Noticef(format string, v ...any) { l.s.Debugf(format, v...) }
func (l zapLogger) Warnf(format string, v ...any)   { l.s.Warnf(format, v...) }
func (l zapLogger) Fatalf(format string, v ...any)  { l.s.Errorf(format, v...) }
func (l zapLogger) Errorf(format string, v ...any)  { l.s.Errorf(format, v...) }
func (l zapLogger) Debugf(format string, v ...any)  { l.s.Debugf(format, v...) }
func (l zapLogger) Tracef(format string, v ...any)  {}
