// Package brokertest runs a real nats-server with JetStream in-process for tests, and
// restarts it on the same store to simulate a crash or an upgrade.
package brokertest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an in-process JetStream server owned by one test.
type Server struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

// Start starts a server on a free loopback port with its store in a temporary folder;
// it is shut down when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoSigs:    true,
		NoLog:     true,
	}}
	s.start()
	// Keep the port, so that clients reconnect to the same address after Restart.
	s.opts.Port = s.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	if err := s.startQuiet(); err != nil {
		s.t.Fatal(err)
	}
}

// startQuiet starts the server and reports a failure instead of failing the test, so
// that it can run outside the test's goroutine.
func (s *Server) startQuiet() error {
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		return fmt.Errorf("nats-server %s did not become ready within 30s", opts.ServerName)
	}
	s.srv = srv
	return nil
}

// URL is the client URL; it stays the same across restarts.
func (s *Server) URL() string { return s.srv.ClientURL() }

// StoreDir is the JetStream store folder.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// Streams is how many streams (key-value buckets included) the server holds: a test
// that a refused set-up created nothing checks it is 0.
func (s *Server) Streams() int { return s.srv.GlobalAccount().JetStreamUsage().Streams }

// Shutdown stops the server. Calling it twice is harmless.
func (s *Server) Shutdown() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start()
}

// Connect returns a client connection and its JetStream context, closed when the test
// ends. The connection reconnects forever, across Restart.
func (s *Server) Connect() (*nats.Conn, jetstream.JetStream) {
	s.t.Helper()
	return connect(s.t, s.URL())
}

// connect makes a connection to urls that reconnects forever and is closed when the
// test ends.
func connect(t testing.TB, urls string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}
