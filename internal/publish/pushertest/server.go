// Package pushertest is a fake Pusher Channels HTTP API for tests. It checks requests
// the way Pusher does (auth_key, auth_timestamp, body_md5, HMAC auth_signature),
// enforces Pusher's limits, records the events it accepts, and can be told to fail.
package pushertest

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/publish/providertest"
	"github.com/liverelay/liverelay/internal/pushersign"
)

// Pusher's limits, as its HTTP API enforces them.
const (
	MaxData        = 10240 // bytes of one event's data string
	MaxBatch       = 10    // events in one batch_events call
	MaxChannels    = 100   // channels of one events call
	MaxChannelLen  = 164
	MaxEventName   = 200
	TimestampGrace = 600 * time.Second
	maxBody        = 1 << 20
)

var channelRe = regexp.MustCompile(`^[-a-zA-Z0-9_=@,.;]+$`)

// Event is one event the fake accepted.
type Event struct {
	Channel  string
	Name     string
	Data     string
	Received time.Time
}

// Fault is a scripted answer to one request.
type Fault struct {
	Status     int           // non-zero: answer this status and record nothing
	RetryAfter string        // Retry-After header sent with Status, when non-empty
	Delay      time.Duration // extra latency for this request
}

// Script, what SetScript takes, decides the fate of request n (counting from 1),
// given the events it carries (nil when its body is not a valid trigger). The zero
// Fault lets the request through. It is called from the server's goroutines.
type Script func(n int64, events []Event) Fault

// Server is a fake Pusher HTTP API: Requests, Rejected, Connections, SetDelay,
// SetScript and Wait are those of providertest.Controls, and its own FailNext takes
// a status instead of a Fault. All its methods are safe for concurrent use.
type Server struct {
	providertest.Controls[Event, Fault, []Event]
	srv                providertest.Server
	appID, key, secret string
	events             *providertest.Recorder[Event]
	faults             providertest.Faults[Fault, []Event]
}

// New starts a fake for one app; it is closed when t ends.
func New(t testing.TB, appID, key, secret string) *Server {
	t.Helper()
	s := &Server{appID: appID, key: key, secret: secret, events: providertest.NewRecorder[Event]("pusher", "events")}
	s.Controls = providertest.NewControls(&s.srv, s.events, &s.faults)
	s.srv.Start(t, http.HandlerFunc(s.serve))
	return s
}

// Host is host:port of the fake, for PusherConfig.Host (with Secure false).
func (s *Server) Host() string { return strings.TrimPrefix(s.srv.URL(), "http://") }

// URL is the fake's base URL, http://host:port.
func (s *Server) URL() string { return s.srv.URL() }

// Events returns a copy of the accepted events, in the order they were accepted.
func (s *Server) Events() []Event { return s.events.All() }

// FailNext makes the next n requests answer status, with a Retry-After header when
// retryAfter is not empty, without recording their events.
func (s *Server) FailNext(n int, status int, retryAfter string) {
	s.faults.FailNext(n, Fault{Status: status, RetryAfter: retryAfter})
}

// WaitEvents waits up to timeout for at least n accepted events and returns them all;
// it fails t when they do not come. Call it from the test's goroutine.
func (s *Server) WaitEvents(t testing.TB, n int, timeout time.Duration) []Event {
	t.Helper()
	return s.events.WaitN(t, n, timeout)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	n := s.srv.CountRequest()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.reject(w, providertest.Failf(http.StatusRequestEntityTooLarge, "Request body too large or unreadable: %v", err), "")
		return
	}
	events, single, perr := parse(r.URL.Path, s.appID, body)
	f := s.faults.Next(n, events)
	if !s.srv.Sleep(r.Context(), f.Delay) {
		return // the client gave up, or the fake is closing
	}
	if f.Status != 0 {
		s.reject(w, providertest.Failf(f.Status, "%s", http.StatusText(f.Status)), f.RetryAfter)
		return
	}
	if err := s.authenticate(r, body); err != nil {
		s.reject(w, err, "")
		return
	}
	if perr != nil {
		s.reject(w, perr, "")
		return
	}
	if err := check(events); err != nil {
		s.reject(w, err, "")
		return
	}
	now := time.Now()
	for i := range events {
		events[i].Received = now
	}
	s.events.Add(events...)
	w.Header().Set("Content-Type", "application/json")
	if single {
		io.WriteString(w, "{}")
		return
	}
	io.WriteString(w, `{"batch":[`+strings.TrimSuffix(strings.Repeat("{},", len(events)), ",")+`]}`)
}

// reject answers err as Pusher does, in plain text.
func (s *Server) reject(w http.ResponseWriter, err *providertest.HTTPError, retryAfter string) {
	s.srv.Reject(w, err.Status, retryAfter, "text/plain; charset=utf-8", err.Message+"\n")
}

// authenticate checks the request signature as Pusher does.
func (s *Server) authenticate(r *http.Request, body []byte) *providertest.HTTPError {
	if r.Method != http.MethodPost {
		return providertest.Failf(http.StatusMethodNotAllowed, "Method %s not allowed", r.Method)
	}
	q, err := pushersign.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return providertest.Failf(http.StatusBadRequest, "Invalid query string: %v", err)
	}
	if q["auth_key"] != s.key {
		return providertest.Failf(http.StatusUnauthorized, "Unknown auth_key")
	}
	if q["auth_version"] != "1.0" {
		return providertest.Failf(http.StatusUnauthorized, "Invalid auth_version %q", q["auth_version"])
	}
	ts, err := strconv.ParseInt(q["auth_timestamp"], 10, 64)
	if err != nil {
		return providertest.Failf(http.StatusUnauthorized, "Invalid auth_timestamp %q", q["auth_timestamp"])
	}
	now := time.Now()
	if skew := now.Sub(time.Unix(ts, 0)).Abs(); skew > TimestampGrace {
		return providertest.Failf(http.StatusUnauthorized, "Timestamp expired: Given timestamp (%s) not within %.0fs of server time (%s)",
			time.Unix(ts, 0).UTC().Format(time.RFC3339), TimestampGrace.Seconds(), now.UTC().Format(time.RFC3339))
	}
	if len(body) > 0 || q["body_md5"] != "" {
		sum := md5.Sum(body)
		if q["body_md5"] != hex.EncodeToString(sum[:]) {
			return providertest.Failf(http.StatusUnauthorized, "Invalid body_md5")
		}
	}
	toSign := pushersign.StringToSign(r.Method, r.URL.Path, q)
	want := pushersign.Sign(s.secret, toSign)
	if !hmac.Equal([]byte(q["auth_signature"]), []byte(want)) {
		return providertest.Failf(http.StatusUnauthorized, "Invalid signature: you should have sent HmacSHA256Hex(%q, your_secret_key), but you sent %q",
			toSign, q["auth_signature"])
	}
	return nil
}

// parse decodes a trigger: batch_events gives one event per entry, events one per
// channel (single is true).
func parse(path, appID string, body []byte) (events []Event, single bool, err *providertest.HTTPError) {
	prefix := "/apps/" + appID + "/"
	if !strings.HasPrefix(path, prefix) {
		return nil, false, providertest.Failf(http.StatusNotFound, "Unknown app or path %s", path)
	}
	switch strings.TrimPrefix(path, prefix) {
	case "batch_events":
		var req struct {
			Batch []struct {
				Channel string `json:"channel"`
				Name    string `json:"name"`
				Data    string `json:"data"`
			} `json:"batch"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, false, providertest.Failf(http.StatusBadRequest, "Invalid JSON: %v", err)
		}
		for _, e := range req.Batch {
			events = append(events, Event{Channel: e.Channel, Name: e.Name, Data: e.Data})
		}
		if len(events) > MaxBatch {
			return events, false, providertest.Failf(http.StatusBadRequest, "Batch too large (%d > %d events)", len(events), MaxBatch)
		}
		return events, false, nil
	case "events":
		var req struct {
			Name     string   `json:"name"`
			Channels []string `json:"channels"`
			Channel  string   `json:"channel"`
			Data     string   `json:"data"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, true, providertest.Failf(http.StatusBadRequest, "Invalid JSON: %v", err)
		}
		channels := req.Channels
		if req.Channel != "" {
			channels = append(channels, req.Channel)
		}
		for _, ch := range channels {
			events = append(events, Event{Channel: ch, Name: req.Name, Data: req.Data})
		}
		switch {
		case len(channels) == 0:
			return events, true, providertest.Failf(http.StatusBadRequest, "Missing channels")
		case len(channels) > MaxChannels:
			return events, true, providertest.Failf(http.StatusBadRequest, "Too many channels (%d > %d)", len(channels), MaxChannels)
		}
		return events, true, nil
	}
	return nil, false, providertest.Failf(http.StatusNotFound, "Unknown path %s", path)
}

// check enforces Pusher's limits on every event of a request, before any is kept.
func check(events []Event) *providertest.HTTPError {
	for i, e := range events {
		switch {
		case e.Name == "" || len(e.Name) > MaxEventName:
			return providertest.Failf(http.StatusBadRequest, "Event %d: event name must be 1 to %d characters", i, MaxEventName)
		case len(e.Channel) > MaxChannelLen:
			return providertest.Failf(http.StatusBadRequest, "Event %d: channel name too long (%d > %d)", i, len(e.Channel), MaxChannelLen)
		case !channelRe.MatchString(e.Channel):
			return providertest.Failf(http.StatusBadRequest, "Event %d: invalid channel name %q", i, e.Channel)
		case len(e.Data) > MaxData:
			return providertest.Failf(http.StatusRequestEntityTooLarge, "Event %d: data content of this event exceeds the allowed maximum (%d bytes)", i, MaxData)
		}
	}
	return nil
}
