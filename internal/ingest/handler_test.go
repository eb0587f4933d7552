package ingest

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pusher "github.com/pusher/pusher-http-go/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/pushersign"
)

var testCreds = Credentials{AppID: "4242", Key: "ingest-key", Secret: "ingest-secret"}

// fakeStore records what the handler stores; fail, when set, answers instead.
type fakeStore struct {
	mu     sync.Mutex
	events []event.Event
	calls  int
	fail   func([]event.Event) error
}

func (s *fakeStore) Append(_ context.Context, evs []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail != nil {
		if err := s.fail(evs); err != nil {
			return err
		}
	}
	s.events = append(s.events, evs...)
	return nil
}

func (s *fakeStore) stored() ([]event.Event, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.events...), s.calls
}

// startHandler serves a handler over store on a loopback httptest server.
func startHandler(t testing.TB, store Store, maxBytes int) *httptest.Server {
	t.Helper()
	h, err := NewHandler(Config{Credentials: testCreds, EventName: "live-page-update", MaxBytes: maxBytes},
		store, prometheus.NewRegistry(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func goClient(srv *httptest.Server, creds Credentials) *pusher.Client {
	return goClientAt(srv.URL, creds)
}

// goClientAt is pusher-http-go pointed at base, http://host:port.
func goClientAt(base string, creds Credentials) *pusher.Client {
	return &pusher.Client{AppID: creds.AppID, Key: creds.Key, Secret: creds.Secret,
		Host: strings.TrimPrefix(base, "http://"), Secure: false}
}

// startServer serves h with the ingest's own Server on a loopback port until the test
// ends, and returns its base URL.
func startServer(t testing.TB, h http.Handler) string {
	t.Helper()
	log := zaptest.NewLogger(t)
	if _, ok := t.(*testing.B); ok {
		log = zap.NewNop()
	}
	s, err := Listen("127.0.0.1:0", TLS{}, h, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest server: %v", err)
		}
	})
	return "http://" + s.Addr()
}

type update struct {
	Renders  map[string]render `json:"renders"`
	Removals []string          `json:"removals"`
}

type render struct {
	Show    bool   `json:"show"`
	Content string `json:"content"`
}

// pusher-http-go, as a Go CMS would use it, triggers into the ingest with Trigger,
// TriggerMulti and TriggerBatch; every event is stored as the update it carried.
func TestGoClientTriggers(t *testing.T) {
	store := &fakeStore{}
	srv := startHandler(t, store, 256<<10)
	c := goClient(srv, testCreds)

	first := update{Renders: map[string]render{"p1": {true, `<div class="live-post">Kick-off</div>`}}, Removals: []string{}}
	if err := c.Trigger("live-blog-2026", "live-page-update", first); err != nil {
		t.Fatalf("Trigger: %v", err)
	}
	second := update{Renders: map[string]render{}, Removals: []string{"p0"}}
	if err := c.TriggerMulti([]string{"a", "b.c", "d=e@f,g;h"}, "live-page-update", second); err != nil {
		t.Fatalf("TriggerMulti: %v", err)
	}
	data, _ := json.Marshal(first)
	if _, err := c.TriggerBatch([]pusher.Event{
		{Channel: "x", Name: "live-page-update", Data: string(data)},
		{Channel: "y", Name: "live-page-update", Data: `{"renders":{"q":{"show":false,"content":"hidden"}},"removals":[],"revision":77}`},
	}); err != nil {
		t.Fatalf("TriggerBatch: %v", err)
	}

	got, _ := store.stored()
	var channels []string
	for _, ev := range got {
		channels = append(channels, ev.Channel)
	}
	if want := "live-blog-2026 a b.c d=e@f,g;h x y"; strings.Join(channels, " ") != want {
		t.Fatalf("stored channels %q, want %q", channels, want)
	}
	if r := got[0].Renders; len(r) != 1 || r[0] != (event.Render{ID: "p1", Show: true, Content: `<div class="live-post">Kick-off</div>`}) {
		t.Errorf("first event renders %+v", r)
	}
	if got[1].Removals[0] != "p0" || len(got[1].Renders) != 0 {
		t.Errorf("second event %+v", got[1])
	}
	if got[5].Revision != 77 || got[5].Renders[0].Show {
		t.Errorf("batch event with a revision stored as %+v", got[5])
	}
	if got[0].Revision != 0 || got[0].EmittedAt.IsZero() {
		t.Errorf("an event without revision should reach the store unstamped, with emitted_at: %+v", got[0])
	}
}

// pusher-http-go reports the ingest's refusals with their status and message, as it
// would report Pusher's.
func TestGoClientSeesRefusals(t *testing.T) {
	store := &fakeStore{}
	srv := startHandler(t, store, 256<<10)
	ok := update{Renders: map[string]render{}, Removals: []string{}}

	wrongSecret := testCreds
	wrongSecret.Secret = "not-it"
	err := goClient(srv, wrongSecret).Trigger("c", "live-page-update", ok)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "Invalid signature") {
		t.Errorf("wrong secret: %v", err)
	}
	err = goClient(srv, testCreds).Trigger("c", "client-typing", ok)
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), `event name "client-typing" is not accepted`) {
		t.Errorf("wrong event name: %v", err)
	}
	if _, calls := store.stored(); calls != 0 {
		t.Errorf("the store was called %d times for refused requests", calls)
	}
}

// signed builds a request as Pusher's clients sign it; edit changes the query before
// it is signed (nil leaves it), and after signs the rest.
func signed(t testing.TB, base, path string, body []byte, creds Credentials, edit func(url.Values)) *http.Request {
	t.Helper()
	q := url.Values{
		"auth_key":       {creds.Key},
		"auth_timestamp": {strconv.FormatInt(time.Now().Unix(), 10)},
		"auth_version":   {"1.0"},
	}
	if len(body) > 0 {
		sum := md5.Sum(body)
		q.Set("body_md5", hex.EncodeToString(sum[:]))
	}
	if edit != nil {
		edit(q)
	}
	plain := map[string]string{}
	for k, v := range q {
		plain[k] = v[0]
	}
	if _, ok := q["auth_signature"]; !ok {
		q.Set("auth_signature", pushersign.Sign(creds.Secret, pushersign.StringToSign(http.MethodPost, path, plain)))
	}
	req, err := http.NewRequest(http.MethodPost, base+path+"?"+q.Encode(), strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// Every refusal a Pusher client can meet, with the status and message it shows, and
// nothing stored.
func TestRefusals(t *testing.T) {
	const max = 2048
	valid := `{"renders":{"p":{"show":true,"content":"<p>x</p>"}},"removals":[]}`
	events := func(name, data string, channels ...string) []byte {
		b, _ := json.Marshal(map[string]any{"name": name, "data": data, "channels": channels})
		return b
	}
	many := make([]string, MaxChannels+1)
	for i := range many {
		many[i] = "c" + strconv.Itoa(i)
	}
	batch := func(n int) []byte {
		var items []map[string]string
		for i := range n {
			items = append(items, map[string]string{"channel": "c" + strconv.Itoa(i), "name": "live-page-update", "data": valid})
		}
		b, _ := json.Marshal(map[string]any{"batch": items})
		return b
	}
	const ev = "/apps/4242/events"
	tests := []struct {
		name   string
		path   string
		body   []byte
		creds  Credentials
		edit   func(url.Values)
		status int
		msg    string
	}{
		{"bad signature", ev, events("live-page-update", valid, "c"), testCreds,
			func(q url.Values) { q.Set("auth_signature", strings.Repeat("0", 64)) }, 401, "Invalid signature"},
		{"wrong secret", ev, events("live-page-update", valid, "c"), Credentials{Key: testCreds.Key, Secret: "x"}, nil, 401, "Invalid signature"},
		{"wrong key", ev, events("live-page-update", valid, "c"), Credentials{Key: "other", Secret: testCreds.Secret}, nil, 401, "Unknown auth_key"},
		{"no key", ev, events("live-page-update", valid, "c"), testCreds, func(q url.Values) { q.Del("auth_key") }, 401, "Missing auth_key"},
		{"stale timestamp", ev, events("live-page-update", valid, "c"), testCreds,
			func(q url.Values) {
				q.Set("auth_timestamp", strconv.FormatInt(time.Now().Add(-601*time.Second).Unix(), 10))
			}, 401, "Timestamp expired"},
		{"future timestamp", ev, events("live-page-update", valid, "c"), testCreds,
			func(q url.Values) {
				q.Set("auth_timestamp", strconv.FormatInt(time.Now().Add(601*time.Second).Unix(), 10))
			}, 401, "Timestamp expired"},
		{"wrong auth version", ev, events("live-page-update", valid, "c"), testCreds, func(q url.Values) { q.Set("auth_version", "2.0") }, 401, "Invalid auth_version"},
		{"body md5 mismatch", ev, events("live-page-update", valid, "c"), testCreds,
			func(q url.Values) { q.Set("body_md5", strings.Repeat("a", 32)) }, 401, "Invalid body_md5"},
		{"body without md5", ev, events("live-page-update", valid, "c"), testCreds, func(q url.Values) { q.Del("body_md5") }, 401, "Invalid body_md5"},
		{"oversized body", ev, []byte(`{"name":"live-page-update","channels":["c"],"data":"` + strings.Repeat("x", int(MaxBody(max))) + `"}`), testCreds, nil,
			413, "Request body too large"},
		{"oversized body, not signed: refused before it is read", ev,
			[]byte(`{"name":"live-page-update","channels":["c"],"data":"` + strings.Repeat("x", int(MaxBody(max))) + `"}`), testCreds,
			func(q url.Values) { q.Set("auth_signature", strings.Repeat("0", 64)) }, 401, "Invalid signature"},
		{"oversized data", ev, events("live-page-update", `{"renders":{"p":{"show":true,"content":"`+strings.Repeat("x", max)+`"}},"removals":[]}`, "c"), testCreds, nil,
			413, "data content of this event exceeds the allowed maximum (2048 bytes)"},
		{"bad channel", ev, events("live-page-update", valid, "news/uk"), testCreds, nil, 400, `invalid channel name "news/uk"`},
		{"long channel", ev, events("live-page-update", valid, strings.Repeat("c", 165)), testCreds, nil, 400, "channel name too long (165 > 164 characters)"},
		{"too many channels", ev, events("live-page-update", valid, many...), testCreds, nil, 400, "Too many channels (101 > 100)"},
		{"no channel", ev, events("live-page-update", valid), testCreds, nil, 400, "Missing channels"},
		{"wrong event name", ev, events("client-typing", valid, "c"), testCreds, nil, 400, `event name "client-typing" is not accepted: liverelay takes only "live-page-update"`},
		{"data not an update", ev, events("live-page-update", `{"text":"hello"}`, "c"), testCreds, nil, 400, "data is not a Wagtail Live update"},
		{"data not JSON", ev, events("live-page-update", `hello`, "c"), testCreds, nil, 400, "data is not a Wagtail Live update"},
		{"data without removals", ev, events("live-page-update", `{"renders":{}}`, "c"), testCreds, nil, 400, `"removals" is missing`},
		{"data not a string", ev, []byte(`{"name":"live-page-update","channels":["c"],"data":{"renders":{},"removals":[]}}`), testCreds, nil, 400, "data must be a string"},
		{"body not JSON", ev, []byte(`name=x`), testCreds, nil, 400, "Invalid JSON body"},
		{"batch too large", "/apps/4242/batch_events", batch(MaxBatch + 1), testCreds, nil, 400, "Batch too large (11 > 10 events)"},
		{"one bad event of a batch", "/apps/4242/batch_events",
			[]byte(`{"batch":[{"channel":"a","name":"live-page-update","data":` + strconv.Quote(valid) + `},{"channel":"b","name":"live-page-update","data":"{}"}]}`),
			testCreds, nil, 400, "Event 1: data is not a Wagtail Live update"},
		{"unknown app", "/apps/1/events", events("live-page-update", valid, "c"), testCreds, nil, 404, `Unknown app "1"`},
		{"unknown path", "/apps/4242/channels", nil, testCreds, nil, 404, "Not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &fakeStore{}
			srv := startHandler(t, store, max)
			res, err := srv.Client().Do(signed(t, srv.URL, tt.path, tt.body, tt.creds, tt.edit))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status || !strings.Contains(string(body), tt.msg) {
				t.Errorf("answered %d %q, want %d with %q", res.StatusCode, body, tt.status, tt.msg)
			}
			if _, calls := store.stored(); calls != 0 {
				t.Errorf("the store was called for a refused request")
			}
			if strings.Contains(string(body), testCreds.Secret) {
				t.Errorf("the answer shows the secret: %s", body)
			}
		})
	}

	t.Run("GET", func(t *testing.T) {
		srv := startHandler(t, &fakeStore{}, max)
		res, err := srv.Client().Get(srv.URL + "/apps/4242/events")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET answered %d, want 405", res.StatusCode)
		}
	})
}

// A store that cannot take the events makes the request fail with 503, which Pusher
// clients report as an error; one that finds an event too large for NATS, 413.
func TestStoreFailures(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		msg    string
	}{
		{fmt.Errorf("%w: not connected to NATS (RECONNECTING)", ErrUnavailable), 503, "Service unavailable"},
		{fmt.Errorf("%w: event 1 of 1 is 2000000 bytes stored", ErrTooLarge), 413, "max payload"},
	} {
		store := &fakeStore{fail: func([]event.Event) error { return tt.err }}
		srv := startHandler(t, store, 2048)
		err := goClient(srv, testCreds).Trigger("c", "live-page-update", update{Renders: map[string]render{}, Removals: []string{}})
		if err == nil || !strings.Contains(err.Error(), strconv.Itoa(tt.status)) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("store error %v: client saw %v, want %d %q", tt.err, err, tt.status, tt.msg)
		}
		if !errors.Is(tt.err, ErrUnavailable) && !errors.Is(tt.err, ErrTooLarge) {
			t.Fatal("test error does not wrap a sentinel")
		}
	}
}
