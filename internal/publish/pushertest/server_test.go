package pushertest

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/publish/providertest"
	"github.com/liverelay/liverelay/internal/pushersign"
	"github.com/pusher/pusher-http-go/v5"
)

const (
	appID  = "4242"
	key    = "the-key"
	secret = "the-secret"
)

// request is a hand-made signed request to the fake.
type request struct {
	method string
	path   string
	body   string
	query  func(q map[string]string) // edits the parameters before signing
	after  func(q map[string]string) // edits them after signing
	secret string                    // signs with another secret
}

func (r request) send(t *testing.T, s *Server) (int, string, http.Header) {
	t.Helper()
	method := cmp.Or(r.method, http.MethodPost)
	path := cmp.Or(r.path, "/apps/"+appID+"/batch_events")
	sec := cmp.Or(r.secret, secret)
	sum := md5.Sum([]byte(r.body))
	q := map[string]string{
		"auth_key":       key,
		"auth_timestamp": strconv.FormatInt(time.Now().Unix(), 10),
		"auth_version":   "1.0",
		"body_md5":       hex.EncodeToString(sum[:]),
	}
	if r.query != nil {
		r.query(q)
	}
	q["auth_signature"] = pushersign.Sign(sec, pushersign.StringToSign(method, path, q))
	if r.after != nil {
		r.after(q)
	}
	var pairs []string
	for k, v := range q {
		pairs = append(pairs, k+"="+v)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path+"?"+strings.Join(pairs, "&"), strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	resp, b := providertest.Do(t, req)
	return resp.StatusCode, string(b), resp.Header
}

// batchBody encodes a batch_events body.
func batchBody(t *testing.T, events ...Event) string {
	t.Helper()
	type ev struct {
		Channel string `json:"channel"`
		Name    string `json:"name"`
		Data    string `json:"data"`
	}
	var b struct {
		Batch []ev `json:"batch"`
	}
	for _, e := range events {
		b.Batch = append(b.Batch, ev{e.Channel, e.Name, e.Data})
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func events(n int, channel, data string) []Event {
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = Event{Channel: channel, Name: "live-page-update", Data: data}
	}
	return evs
}

func TestServerVerifies(t *testing.T) {
	one := events(1, "page-1", `{"renders":{},"removals":[]}`)
	tests := []struct {
		name     string
		req      func(t *testing.T) request
		status   int
		body     string // substring of the answer
		accepted int
	}{
		{"valid batch", func(t *testing.T) request { return request{body: batchBody(t, events(2, "page-1", "{}")...)} },
			200, `{"batch":[{},{}]}`, 2},
		{"bad body_md5", func(t *testing.T) request {
			return request{body: batchBody(t, one...), query: func(q map[string]string) { q["body_md5"] = strings.Repeat("0", 32) }}
		}, 401, "Invalid body_md5", 0},
		{"body changed after signing", func(t *testing.T) request {
			return request{body: batchBody(t, one...), after: func(q map[string]string) { q["body_md5"] = strings.Repeat("1", 32) }}
		}, 401, "Invalid body_md5", 0},
		{"wrong secret", func(t *testing.T) request { return request{body: batchBody(t, one...), secret: "other"} },
			401, "Invalid signature", 0},
		{"signature of another path", func(t *testing.T) request {
			return request{body: batchBody(t, one...), after: func(q map[string]string) {
				q["auth_signature"] = pushersign.Sign(secret, pushersign.StringToSign("POST", "/apps/"+appID+"/events", q))
			}}
		}, 401, "Invalid signature", 0},
		{"stale timestamp", func(t *testing.T) request {
			return request{body: batchBody(t, one...), query: func(q map[string]string) {
				q["auth_timestamp"] = strconv.FormatInt(time.Now().Add(-601*time.Second).Unix(), 10)
			}}
		}, 401, "Timestamp expired", 0},
		{"future timestamp", func(t *testing.T) request {
			return request{body: batchBody(t, one...), query: func(q map[string]string) {
				q["auth_timestamp"] = strconv.FormatInt(time.Now().Add(700*time.Second).Unix(), 10)
			}}
		}, 401, "Timestamp expired", 0},
		{"unknown key", func(t *testing.T) request {
			return request{body: batchBody(t, one...), query: func(q map[string]string) { q["auth_key"] = "nope" }}
		}, 401, "auth_key", 0},
		{"auth_version", func(t *testing.T) request {
			return request{body: batchBody(t, one...), query: func(q map[string]string) { q["auth_version"] = "2.0" }}
		}, 401, "auth_version", 0},
		{"data at limit", func(t *testing.T) request {
			return request{body: batchBody(t, events(1, "c", strings.Repeat("x", MaxData))...)}
		}, 200, "", 1},
		{"data over limit", func(t *testing.T) request {
			return request{body: batchBody(t, events(1, "c", strings.Repeat("x", MaxData+1))...)}
		}, 413, "exceeds", 0},
		{"batch at limit", func(t *testing.T) request { return request{body: batchBody(t, events(MaxBatch, "c", "{}")...)} },
			200, "", MaxBatch},
		{"batch over limit", func(t *testing.T) request { return request{body: batchBody(t, events(MaxBatch+1, "c", "{}")...)} },
			400, "Batch too large", 0},
		{"channel at limit", func(t *testing.T) request {
			return request{body: batchBody(t, events(1, strings.Repeat("c", MaxChannelLen), "{}")...)}
		}, 200, "", 1},
		{"channel too long", func(t *testing.T) request {
			return request{body: batchBody(t, events(1, strings.Repeat("c", MaxChannelLen+1), "{}")...)}
		}, 400, "too long", 0},
		{"channel with a space", func(t *testing.T) request { return request{body: batchBody(t, events(1, "a b", "{}")...)} },
			400, "invalid channel", 0},
		{"empty event name", func(t *testing.T) request {
			return request{body: batchBody(t, Event{Channel: "c", Data: "{}"})}
		}, 400, "event name", 0},
		{"event name too long", func(t *testing.T) request {
			return request{body: batchBody(t, Event{Channel: "c", Name: strings.Repeat("n", MaxEventName+1), Data: "{}"})}
		}, 400, "event name", 0},
		{"not JSON", func(t *testing.T) request { return request{body: "{"} }, 400, "Invalid JSON", 0},
		{"GET", func(t *testing.T) request { return request{method: http.MethodGet} }, 405, "not allowed", 0},
		{"unknown app", func(t *testing.T) request { return request{path: "/apps/1/batch_events", body: batchBody(t, one...)} },
			404, "Unknown", 0},
		{"single trigger", func(t *testing.T) request {
			return request{path: "/apps/" + appID + "/events", body: `{"name":"e","channels":["a","b"],"data":"<p>"}`}
		}, 200, "{}", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t, appID, key, secret)
			status, body, _ := tc.req(t).send(t, s)
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("answer %d %q, want %d containing %q", status, body, tc.status, tc.body)
			}
			if got := len(s.Events()); got != tc.accepted {
				t.Errorf("%d events recorded, want %d", got, tc.accepted)
			}
			wantRejected := int64(0)
			if tc.status != 200 {
				wantRejected = 1
			}
			if s.Requests() != 1 || s.Rejected() != wantRejected {
				t.Errorf("requests %d rejected %d, want 1 and %d", s.Requests(), s.Rejected(), wantRejected)
			}
		})
	}
}

func TestServerFailNext(t *testing.T) {
	s := New(t, appID, key, secret)
	s.FailNext(2, http.StatusTooManyRequests, "7")
	body := batchBody(t, events(1, "c", "{}")...)
	for i := range 2 {
		status, _, h := request{body: body}.send(t, s)
		if status != 429 || h.Get("Retry-After") != "7" {
			t.Fatalf("request %d: %d Retry-After %q, want 429 and 7", i+1, status, h.Get("Retry-After"))
		}
	}
	if status, _, _ := (request{body: body}).send(t, s); status != 200 {
		t.Fatalf("third request: %d, want 200", status)
	}
	if s.Requests() != 3 || s.Rejected() != 2 || len(s.Events()) != 1 {
		t.Fatalf("requests %d rejected %d events %d, want 3, 2, 1", s.Requests(), s.Rejected(), len(s.Events()))
	}
}

func TestServerScript(t *testing.T) {
	s := New(t, appID, key, secret)
	var seen []string
	var mu sync.Mutex
	s.SetScript(func(n int64, evs []Event) Fault {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range evs {
			seen = append(seen, e.Channel)
		}
		if n == 2 {
			return Fault{Status: http.StatusServiceUnavailable}
		}
		return Fault{}
	})
	for i, want := range []int{200, 503, 200} {
		body := batchBody(t, events(1, "c"+strconv.Itoa(i), "{}")...)
		if status, _, _ := (request{body: body}).send(t, s); status != want {
			t.Fatalf("request %d: %d, want %d", i+1, status, want)
		}
	}
	if got := s.Events(); len(got) != 2 || got[0].Channel != "c0" || got[1].Channel != "c2" {
		t.Fatalf("events %+v, want c0 then c2", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "c0,c1,c2" {
		t.Fatalf("script saw %v", seen)
	}
}

func TestServerDelay(t *testing.T) {
	s := New(t, appID, key, secret)
	s.SetDelay(time.Minute)
	client := pusher.Client{AppID: appID, Key: key, Secret: secret, Host: s.Host(),
		HTTPClient: &http.Client{Timeout: 50 * time.Millisecond}}
	start := time.Now()
	if err := client.Trigger("c", "e", "{}"); err == nil {
		t.Fatal("trigger succeeded despite a minute of delay")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("client waited %v", d)
	}
	s.SetDelay(0)
	if err := client.Trigger("c", "e", "{}"); err != nil {
		t.Fatalf("trigger without delay: %v", err)
	}
}

// TestServerLibrary checks the fake accepts what the real client library sends.
func TestServerLibrary(t *testing.T) {
	s := New(t, appID, key, secret)
	client := pusher.Client{AppID: appID, Key: key, Secret: secret, Host: s.Host(), HTTPClient: &http.Client{}}
	if err := client.Trigger("page-1", "live-page-update", `{"a":"<p>&amp;</p>"}`); err != nil {
		t.Fatalf("trigger: %v", err)
	}
	_, err := client.TriggerBatch([]pusher.Event{
		{Channel: "page-2", Name: "live-page-update", Data: "one"},
		{Channel: "page-3", Name: "live-page-update", Data: "two"},
	})
	if err != nil {
		t.Fatalf("trigger batch: %v", err)
	}
	got := s.WaitEvents(t, 3, 5*time.Second)
	want := []Event{
		{Channel: "page-1", Name: "live-page-update", Data: `{"a":"<p>&amp;</p>"}`},
		{Channel: "page-2", Name: "live-page-update", Data: "one"},
		{Channel: "page-3", Name: "live-page-update", Data: "two"},
	}
	for i := range want {
		if got[i].Channel != want[i].Channel || got[i].Name != want[i].Name || got[i].Data != want[i].Data {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
		if got[i].Received.IsZero() {
			t.Errorf("event %d has no Received time", i)
		}
	}
	bad := client
	bad.Secret = "wrong"
	if err := bad.Trigger("page-1", "e", "x"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("trigger with a wrong secret: %v, want a 401", err)
	}
}

func TestServerWait(t *testing.T) {
	s := New(t, appID, key, secret)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := s.Wait(ctx, func(evs []Event) bool { return len(evs) > 0 }); err == nil {
		t.Fatal("Wait returned nil with no events")
	}

	done := make(chan error, 1)
	go func() {
		done <- s.Wait(t.Context(), func(evs []Event) bool { return len(evs) >= 2 })
	}()
	client := pusher.Client{AppID: appID, Key: key, Secret: secret, Host: s.Host(), HTTPClient: &http.Client{}}
	for range 2 {
		if err := client.Trigger("c", "e", "x"); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after 2 events")
	}
}
