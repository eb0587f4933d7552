// Package piesockettest is a fake PieSocket publish API for tests. It checks requests
// the way PieSocket does (the API key and secret in the JSON body, the channel id
// rules), enforces a message size limit, records the messages it accepts, and can be
// told to fail.
//
// PieSocket documents neither its error answers nor a message size limit: the fake
// answers {"error": "..."} with 401 for bad credentials, 400 for a bad request, 413
// for a message over its limit (PieSocketDefaultMaxMessageBytes unless set), and
// {"success": true} with 200 otherwise.
package piesockettest

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/publish/providertest"
)

const (
	// DefaultMaxMessageBytes matches the provider's conservative default.
	DefaultMaxMessageBytes = 16384
	MaxChannelLen          = 30
	// Path is where the publish API lives: https://<cluster_id>.piesocket.com/api/publish.
	Path    = "/api/publish"
	maxBody = 4 << 20
)

var channelRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Message is one message the fake accepted.
type Message struct {
	Channel string
	// Data is the "message" field of the request, as sent: what PieSocket passes on to
	// the channel's WebSocket clients.
	Data     string
	Received time.Time
}

// Fault is a scripted answer to one request.
type Fault struct {
	Status     int    // non-zero: answer this status and record nothing
	Body       string // answer body; empty means {"error": "<status text>"}
	RetryAfter string // Retry-After header, when not empty
	Delay      time.Duration
}

// Script, what SetScript takes, decides the fate of request n (counting from 1),
// given the message it carries (nil when its body is not a valid publish). It is
// called from the server's goroutines.
type Script func(n int64, msg *Message) Fault

// Server is a fake PieSocket publish API: Requests, Rejected, Connections, SetDelay,
// FailNext, SetScript and Wait are those of providertest.Controls. All its methods
// are safe for concurrent use.
type Server struct {
	providertest.Controls[Message, Fault, *Message]
	srv         providertest.Server
	key, secret string
	maxBytes    atomic.Int64
	messages    *providertest.Recorder[Message]
	faults      providertest.Faults[Fault, *Message]
}

// New starts a fake for one API key and secret; it is closed when t ends.
func New(t testing.TB, key, secret string) *Server {
	t.Helper()
	s := &Server{key: key, secret: secret, messages: providertest.NewRecorder[Message]("piesocket", "messages")}
	s.maxBytes.Store(DefaultMaxMessageBytes)
	s.Controls = providertest.NewControls(&s.srv, s.messages, &s.faults)
	s.srv.Start(t, http.HandlerFunc(s.serve))
	return s
}

// URL is the publish URL, for PieSocketConfig.APIURL.
func (s *Server) URL() string { return s.srv.URL() + Path }

// Messages returns a copy of the accepted messages, in the order they were accepted.
func (s *Server) Messages() []Message { return s.messages.All() }

// SetMaxMessageBytes sets the size limit of one message.
func (s *Server) SetMaxMessageBytes(n int) { s.maxBytes.Store(int64(n)) }

// WaitMessages waits up to timeout for at least n accepted messages and returns them
// all; it fails t when they do not come. Call it from the test's goroutine.
func (s *Server) WaitMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	return s.messages.WaitN(t, n, timeout)
}

// request is a publish request's body.
type request struct {
	Key       *string         `json:"key"`
	Secret    *string         `json:"secret"`
	ChannelID json.RawMessage `json:"channelId"`
	Message   json.RawMessage `json:"message"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	n := s.srv.CountRequest()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.reject(w, providertest.Failf(http.StatusRequestEntityTooLarge, "request body too large or unreadable"))
		return
	}
	req, msg, perr := parse(r, body)
	f := s.faults.Next(n, msg)
	if !s.srv.Sleep(r.Context(), f.Delay) {
		return // the client gave up, or the fake is closing
	}
	if f.Status != 0 {
		b := f.Body
		if b == "" {
			b = errorBody(http.StatusText(f.Status))
		}
		s.srv.Reject(w, f.Status, f.RetryAfter, "application/json", b)
		return
	}
	if perr != nil {
		s.reject(w, perr)
		return
	}
	if err := s.authenticate(req); err != nil {
		s.reject(w, err)
		return
	}
	if err := s.check(msg); err != nil {
		s.reject(w, err)
		return
	}
	m := *msg
	m.Received = time.Now()
	s.messages.Add(m)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"success":true}`)
}

func (s *Server) authenticate(req *request) *providertest.HTTPError {
	switch {
	case req.Key == nil || *req.Key == "":
		return providertest.Failf(http.StatusUnauthorized, "API key is required")
	case *req.Key != s.key:
		return providertest.Failf(http.StatusUnauthorized, "Unknown API key")
	case req.Secret == nil || subtle.ConstantTimeCompare([]byte(*req.Secret), []byte(s.secret)) != 1:
		return providertest.Failf(http.StatusUnauthorized, "Invalid API secret")
	}
	return nil
}

func (s *Server) check(m *Message) *providertest.HTTPError {
	switch {
	case m.Channel == "" || len(m.Channel) > MaxChannelLen || !channelRe.MatchString(m.Channel):
		return providertest.Failf(http.StatusBadRequest, "Invalid channelId %q: at most %d characters of [A-Za-z0-9_-]", m.Channel, MaxChannelLen)
	case len(m.Data) > int(s.maxBytes.Load()):
		return providertest.Failf(http.StatusRequestEntityTooLarge, "Message of %d bytes is too large (limit %d)", len(m.Data), s.maxBytes.Load())
	}
	return nil
}

// reject answers err as the fake documents it: {"error": "<message>"}.
func (s *Server) reject(w http.ResponseWriter, err *providertest.HTTPError) {
	s.srv.Reject(w, err.Status, "", "application/json", errorBody(err.Message))
}

func errorBody(msg string) string {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return string(b)
}

// parse decodes a publish request. The message it returns is nil when the body is
// not a publish.
func parse(r *http.Request, body []byte) (*request, *Message, *providertest.HTTPError) {
	if r.URL.Path != Path {
		return nil, nil, providertest.Failf(http.StatusNotFound, "Not found: %s", r.URL.Path)
	}
	if r.Method != http.MethodPost {
		return nil, nil, providertest.Failf(http.StatusMethodNotAllowed, "Method %s not allowed", r.Method)
	}
	if typ, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); typ != "application/json" {
		return nil, nil, providertest.Failf(http.StatusBadRequest, "Content-Type must be application/json")
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, nil, providertest.Failf(http.StatusBadRequest, "Invalid JSON: %v", err)
	}
	var channel string
	if err := json.Unmarshal(req.ChannelID, &channel); err != nil {
		// Numeric channel ids are allowed too.
		var num json.Number
		if err := json.Unmarshal(req.ChannelID, &num); err != nil {
			return &req, nil, providertest.Failf(http.StatusBadRequest, "channelId is required")
		}
		channel = num.String()
	}
	if len(req.Message) == 0 || bytes.Equal(req.Message, []byte("null")) {
		return &req, nil, providertest.Failf(http.StatusBadRequest, "message is required")
	}
	return &req, &Message{Channel: channel, Data: string(req.Message)}, nil
}
