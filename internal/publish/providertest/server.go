package providertest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// Server is the HTTP side of a fake provider: an httptest server that counts
// requests, rejected answers and connections, and can delay every answer. A fake
// holds it by value and Starts it once everything its handler reads is set up. All
// its methods are safe for concurrent use.
type Server struct {
	Counts
	srv  *httptest.Server
	done chan struct{} // closed at cleanup: cuts delays short
}

// Counts are what a fake's HTTP side counts, and the delay it adds: the part of a
// Server its tests use. A fake embeds a pointer to its Server's Counts, so that its
// tests call Requests, Rejected, Connections and SetDelay on the fake itself. All its
// methods are safe for concurrent use.
type Counts struct {
	requests    atomic.Int64
	rejected    atomic.Int64
	connections atomic.Int64
	delay       atomic.Int64 // time.Duration added to every request
}

// Start serves h until t ends.
func (s *Server) Start(t testing.TB, h http.Handler) {
	t.Helper()
	s.done = make(chan struct{})
	s.srv = httptest.NewUnstartedServer(h)
	s.srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.connections.Add(1)
		}
	}
	s.srv.Start()
	t.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
}

// URL is the server's base URL, http://host:port.
func (s *Server) URL() string { return s.srv.URL }

// Addr is the server's address.
func (s *Server) Addr() *net.TCPAddr { return s.srv.Listener.Addr().(*net.TCPAddr) }

// Requests counts every request received, accepted or not: CountRequest calls.
func (c *Counts) Requests() int64 { return c.requests.Load() }

// Rejected counts the requests answered with an error status, scripted ones
// included: CountRejected calls.
func (c *Counts) Rejected() int64 { return c.rejected.Load() }

// Connections counts the TCP connections clients opened to the fake.
func (c *Counts) Connections() int64 { return c.connections.Load() }

// SetDelay adds d of latency to every request from now on.
func (c *Counts) SetDelay(d time.Duration) { c.delay.Store(int64(d)) }

// CountRequest counts a request and returns its number, counting from 1.
func (s *Server) CountRequest() int64 { return s.requests.Add(1) }

// CountRejected counts a request answered with an error.
func (s *Server) CountRejected() { s.rejected.Add(1) }

// Reject counts a request answered with an error and answers it: status, a
// Retry-After header when retryAfter is not empty, and body as contentType.
func (s *Server) Reject(w http.ResponseWriter, status int, retryAfter, contentType, body string) {
	s.CountRejected()
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// Sleep waits the delay set by SetDelay plus extra, or less when ctx ends (the client
// went away) or the server closes. It reports whether it waited the whole time.
func (s *Server) Sleep(ctx context.Context, extra time.Duration) bool {
	d := time.Duration(s.delay.Load()) + extra
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
	case <-s.done:
	}
	return false
}
