// Package broker is liverelay's side of NATS JetStream: the embedded server used when
// no NATS is configured, the client connection, and the streams and consumers that
// carry events, dead letters and partitions.
package broker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
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
	// Authentication every client must present: a token, or a user and password.
	// Without either, the server listens on loopback only.
	Token    string
	User     string
	Password string
}

// NoAuthReason says why an embedded server reachable from other hosts needs
// authentication, and what to set.
const NoAuthReason = "listens beyond this host with no authentication, so anyone who reaches it could publish to readers' pages or read the dead letters: " +
	"set LIVE_EMBEDDED_TOKEN (or LIVE_EMBEDDED_USER and LIVE_EMBEDDED_PASSWORD; each also as _FILE), or listen on loopback such as 127.0.0.1:4222"

// Loopback reports whether a host:port listens on loopback only: 127.0.0.0/8, ::1
// or localhost. An empty host, 0.0.0.0 and :: listen on every interface.
func Loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
	if cfg.Token == "" && cfg.User == "" && !Loopback(cfg.Listen) {
		return nil, fmt.Errorf("embedded NATS on %s (LIVE_EMBEDDED_LISTEN) %s", cfg.Listen, NoAuthReason)
	}
	if cfg.Token != "" && cfg.User != "" {
		return nil, errors.New("embedded NATS: set a token (LIVE_EMBEDDED_TOKEN) or a user (LIVE_EMBEDDED_USER), not both")
	}
	opts := &server.Options{
		ServerName: "liverelay-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		NoSigs:     true,
		NoLog:      true,
		// The token or password itself, never logged: the server's own log lines
		// about clients name the user only.
		Authorization: cfg.Token,
		Username:      cfg.User,
		Password:      cfg.Password,
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
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	// The server reports what stops it from starting (a port in use, a store it
	// cannot open) through its logger's Fatalf, and then never becomes ready.
	fatal := make(chan string, 1)
	srv.SetLoggerV2(zapLogger{s: log.Named("nats-server").Sugar(), fatal: fatal}, false, false, false)
	go srv.Start()
	if err := waitReady(srv, fatal, 30*time.Second); err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS on %s (LIVE_EMBEDDED_LISTEN) with its store in %s (LIVE_DATA_DIR): %w", cfg.Listen, cfg.DataDir, err)
	}
	log.Info("embedded NATS JetStream started", zap.String("url", srv.ClientURL()), zap.String("data_dir", cfg.DataDir), zap.String("sync", cfg.Sync),
		zap.Bool("auth", cfg.Token != "" || cfg.User != ""))
	return &Embedded{srv: srv}, nil
}

// checkDataDir makes sure the store folder exists, is a folder and can be written:
// the server would otherwise fail later with a less direct message.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("embedded NATS store LIVE_DATA_DIR=%q: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".liverelay-write-check-*")
	if err != nil {
		return fmt.Errorf("embedded NATS store LIVE_DATA_DIR=%q is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("embedded NATS store LIVE_DATA_DIR=%q: %w", dir, err)
	}
	return nil
}

// waitReady waits until srv accepts connections, returning at once with the server's
// own words when it gives up starting.
func waitReady(srv *server.Server, fatal <-chan string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case msg := <-fatal:
			return errors.New(msg)
		default:
		}
		if srv.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections after %v", timeout)
		}
	}
}

// ClientURL is the URL clients connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has stopped.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// zapLogger routes nats-server's log lines into zap, and hands the first fatal one to
// StartEmbedded.
type zapLogger struct {
	s     *zap.SugaredLogger
	fatal chan<- string
}

func (l zapLogger) Noticef(format string, v ...any) { l.s.Debugf(format, v...) }
func (l zapLogger) Warnf(format string, v ...any)   { l.s.Warnf(format, v...) }
func (l zapLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.s.Error(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
func (l zapLogger) Errorf(format string, v ...any) { l.s.Errorf(format, v...) }
func (l zapLogger) Debugf(format string, v ...any) { l.s.Debugf(format, v...) }
func (l zapLogger) Tracef(format string, v ...any) {}
