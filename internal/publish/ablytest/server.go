// Package ablytest is a fake Ably REST API for tests. It checks requests the way Ably
// does (HTTP basic auth with the API key, JSON or msgpack bodies, channel names, the
// per-publish size limit counted as Ably counts it, the form of client-supplied message
// ids), reads ids as Ably's idempotent publishing does (the key of <base>:<idx> is
// <base>, idx the message's position in its publish), drops a publish whose key it saw
// on that channel within DedupWindow while answering success, records the messages it
// delivers, and can be told to fail.
//
// It serves POST /channels/<name>/messages (one message or an array) and the batch
// publish endpoint POST /messages (one spec or an array of specs), whose partial
// failures it answers as Ably documents them: HTTP 400 with error code 40020 and a
// batchResponse array, or, in BatchV2 format, 201 with one {successCount,
// failureCount, results} per spec.
package ablytest

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/publish/providertest"
)

// Ably's limits, as its REST API enforces them.
const (
	DefaultMaxMessageBytes = 65536   // per publish, paid accounts
	MaxBatchChannels       = 100     // channels of one batch publish request
	MaxBatchBody           = 2 << 20 // bytes of one batch publish request body
	maxBody                = 8 << 20 // bytes read of any request
)

// Ably error codes the fake answers with (Ably's error code list).
const (
	CodeBadRequest      = 40000
	CodeInvalidBody     = 40001
	CodeTooLarge        = 40009 // with HTTP 400, as every 400xx code
	CodeInvalidChannel  = 40010
	CodeInvalidData     = 40013
	CodeBatchPartial    = 40020
	CodeInvalidID       = 40031
	CodeInvalidCreds    = 40101 // with HTTP 401
	CodeNotFound        = 40400
	CodeRateLimitPerApp = 42911 // with HTTP 429
)

// Message is one message the fake delivered.
type Message struct {
	Channel  string
	Name     string
	ID       string
	Data     string // as sent: with Encoding "json", the JSON text
	Encoding string
	ClientID string
	Extras   string // JSON text, when the message has extras
	Received time.Time
}

// Fault is a scripted answer.
type Fault struct {
	Status     int    // non-zero: fail with this HTTP status
	Code       int    // Ably error code of the failure; zero means Status*100
	Message    string // error message; empty means the status text
	RetryAfter string // Retry-After header, when not empty (whole requests only)
	Delay      time.Duration
}

func (f Fault) info() errorInfo {
	code, msg := f.Code, f.Message
	if code == 0 {
		code = f.Status * 100
	}
	if msg == "" {
		msg = http.StatusText(f.Status)
	}
	return errorInfo{Message: msg, Code: code, StatusCode: f.Status}
}

// Script, what SetScript takes, decides the fate of request n (counting from 1),
// given the messages it carries (nil when its body is not a valid publish). It is
// called from the server's goroutines.
type Script func(n int64, msgs []Message) Fault

// BatchFormat is how the fake answers a batch publish.
type BatchFormat int

const (
	// BatchLegacy answers 201 with one result per channel, or 400 with error 40020
	// and the results in batchResponse when a channel failed.
	BatchLegacy BatchFormat = iota
	// BatchV2 answers 201 with one {successCount, failureCount, results} per spec.
	BatchV2
)

// Server is a fake Ably REST API: Requests, Rejected, Connections, SetDelay,
// FailNext, SetScript and Wait are those of providertest.Controls, and Rejected
// counts a batch publish with partial failures as rejected. All its methods are safe
// for concurrent use.
type Server struct {
	providertest.Controls[Message, Fault, []Message]
	srv             providertest.Server
	keyName, secret string
	duplicates      atomic.Int64
	maxBytes        atomic.Int64
	messages        *providertest.Recorder[Message]
	faults          providertest.Faults[Fault, []Message]

	mu       sync.Mutex
	seen     map[string]time.Time // channel and idempotency key: when first delivered
	clock    func() time.Time
	chanFail map[string]*countedFault
	format   BatchFormat
}

type countedFault struct {
	n int
	f Fault
}

// New starts a fake for one API key, appId.keyId:secret; it is closed when t ends.
func New(t testing.TB, key string) *Server {
	t.Helper()
	keyName, secret, ok := strings.Cut(key, ":")
	if !ok {
		t.Fatalf("ablytest: key %q is not appId.keyId:secret", keyName)
	}
	s := &Server{
		keyName:  keyName,
		secret:   secret,
		messages: providertest.NewRecorder[Message]("ably", "messages"),
		seen:     map[string]time.Time{},
		clock:    time.Now,
		chanFail: map[string]*countedFault{},
	}
	s.maxBytes.Store(DefaultMaxMessageBytes)
	s.Controls = providertest.NewControls(&s.srv, s.messages, &s.faults)
	s.srv.Start(t, http.HandlerFunc(s.serve))
	return s
}

// Host is the fake's host name, for AblyConfig.RESTHost (with TLS off).
func (s *Server) Host() string { return s.srv.Addr().IP.String() }

// Port is the fake's port, for AblyConfig.Port.
func (s *Server) Port() int { return s.srv.Addr().Port }

// URL is the fake's base URL, http://host:port.
func (s *Server) URL() string { return s.srv.URL() }

// Duplicates counts the messages accepted but not delivered because their publish
// repeated an idempotency key of their channel within DedupWindow.
func (s *Server) Duplicates() int64 { return s.duplicates.Load() }

// Messages returns a copy of the delivered messages, in the order they were delivered:
// what subscribers get. Repeats dropped by idempotency are not among them.
func (s *Server) Messages() []Message { return s.messages.All() }

// SetMaxMessageBytes sets the per-publish size limit (16384 for a free account).
func (s *Server) SetMaxMessageBytes(n int) { s.maxBytes.Store(int64(n)) }

// SetClock replaces the clock the fake reads to expire idempotency keys (time.Now by
// default), so that tests can step past DedupWindow without waiting.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = now
}

// now is the fake's clock; s.mu must be held.
func (s *Server) now() time.Time { return s.clock() }

// SetBatchFormat sets how batch publishes are answered.
func (s *Server) SetBatchFormat(f BatchFormat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.format = f
}

// FailChannel makes the next n publishes to channel fail as f says: a channel
// publish fails as a whole, a batch publish reports the error for that channel only.
// Delay and RetryAfter are ignored.
func (s *Server) FailChannel(channel string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chanFail[channel] = &countedFault{n: n, f: f}
}

// WaitMessages waits up to timeout for at least n accepted messages and returns them
// all; it fails t when they do not come. Call it from the test's goroutine.
func (s *Server) WaitMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	return s.messages.WaitN(t, n, timeout)
}

// channelFault consumes one scripted failure of channel, if any.
func (s *Server) channelFault(channel string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cf := s.chanFail[channel]
	if cf == nil || cf.n <= 0 {
		return Fault{}, false
	}
	cf.n--
	return cf.f, true
}

func (e *errorInfo) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	n := s.srv.CountRequest()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.reject(w, r, failf(http.StatusBadRequest, CodeTooLarge, "request body too large or unreadable: %v", err), "")
		return
	}
	p, perr := parse(r, body)
	var msgs []Message
	if perr == nil {
		msgs = p.all()
	}
	f := s.faults.Next(n, msgs)
	if !s.srv.Sleep(r.Context(), f.Delay) {
		return // the client gave up, or the fake is closing
	}
	if f.Status != 0 {
		info := f.info()
		s.reject(w, r, &info, f.RetryAfter)
		return
	}
	if err := s.authenticate(r); err != nil {
		s.reject(w, r, err, "")
		return
	}
	if perr != nil {
		s.reject(w, r, perr, "")
		return
	}
	if p.batch {
		s.serveBatch(w, r, p, len(body))
		return
	}
	sp := p.specs[0]
	ch := sp.channels[0]
	if f, ok := s.channelFault(ch); ok {
		info := f.info()
		s.reject(w, r, &info, "")
		return
	}
	key, cerr := s.check(ch, sp.msgs)
	if cerr != nil {
		s.reject(w, r, cerr, "")
		return
	}
	s.deliver(ch, key, sp.msgs)
	s.answer(w, r, http.StatusCreated, map[string]any{"channel": ch, "messageId": baseID(sp.msgs), "serials": serials(len(sp.msgs))})
}

// serveBatch publishes each spec to each of its channels independently.
func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request, p *publish, size int) {
	channels := 0
	for _, sp := range p.specs {
		channels += len(sp.channels)
	}
	switch {
	case size > MaxBatchBody:
		s.reject(w, r, failf(http.StatusBadRequest, CodeTooLarge, "batch request body of %d bytes is over %d", size, MaxBatchBody), "")
		return
	case channels > MaxBatchChannels:
		s.reject(w, r, failf(http.StatusBadRequest, CodeBadRequest, "batch request addresses %d channels; at most %d are allowed", channels, MaxBatchChannels), "")
		return
	}
	s.mu.Lock()
	format := s.format
	s.mu.Unlock()
	var flat []any
	var perSpec []any
	failures := 0
	for _, sp := range p.specs {
		var results []any
		specFailures := 0
		for _, ch := range sp.channels {
			key, err := s.checkBatch(ch, sp.msgs)
			if err != nil {
				specFailures++
				results = append(results, map[string]any{"channel": ch, "error": err})
				continue
			}
			s.deliver(ch, key, sp.msgs)
			results = append(results, map[string]any{"channel": ch, "messageId": baseID(sp.msgs), "serials": serials(len(sp.msgs))})
		}
		failures += specFailures
		flat = append(flat, results...)
		perSpec = append(perSpec, map[string]any{"successCount": len(results) - specFailures, "failureCount": specFailures, "results": results})
	}
	switch {
	case format == BatchV2:
		if failures > 0 {
			s.srv.CountRejected()
		}
		s.answer(w, r, http.StatusCreated, perSpec)
	case failures > 0:
		s.srv.CountRejected()
		err := failf(http.StatusBadRequest, CodeBatchPartial, "Batched response includes errors")
		w.Header().Set("X-Ably-Errorcode", strconv.Itoa(err.Code))
		s.answer(w, r, http.StatusBadRequest, map[string]any{"error": err, "batchResponse": flat})
	default:
		s.answer(w, r, http.StatusCreated, flat)
	}
}
