package publish

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/publish/providertest"
	"github.com/liverelay/liverelay/internal/publish/pushertest"
)

const (
	testAppID  = "1234"
	testKey    = "key-abc"
	testSecret = "s3cr3t-never-shown"
)

func newTestPusher(t *testing.T, srv *pushertest.Server, edit func(*PusherConfig)) *Pusher {
	t.Helper()
	cfg := PusherConfig{AppID: testAppID, Key: testKey, Secret: testSecret, Host: srv.Host(), Timeout: 5 * time.Second}
	return providertest.Build(t, "NewPusher", NewPusher, cfg, edit)
}

func testMessages(channel string, n int) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{Channel: channel, Data: fmt.Appendf(nil, `{"renders":{},"removals":["%d"]}`, i)}
	}
	return msgs
}

func TestPusherConfigValidate(t *testing.T) {
	valid := PusherConfig{AppID: "1", Key: "k", Secret: testSecret, Cluster: "eu"}
	tests := []configCase[PusherConfig]{
		{"cluster", func(*PusherConfig) {}, nil},
		{"host", func(c *PusherConfig) { c.Cluster, c.Host = "", "localhost:8080" }, nil},
		{"host without port", func(c *PusherConfig) { c.Host = "pusher.internal" }, nil},
		{"no app id", func(c *PusherConfig) { c.AppID = "" }, []string{"PUSHER_APP_ID"}},
		{"no key", func(c *PusherConfig) { c.Key = "" }, []string{"PUSHER_APP_KEY"}},
		{"no secret", func(c *PusherConfig) { c.Secret = "" }, []string{"PUSHER_APP_SECRET"}},
		{"no cluster nor host", func(c *PusherConfig) { c.Cluster = "" }, []string{"PUSHER_APP_CLUSTER", "PUSHER_HOST"}},
		{"bad cluster", func(c *PusherConfig) { c.Cluster = "eu/1" }, []string{"PUSHER_APP_CLUSTER"}},
		{"host with scheme", func(c *PusherConfig) { c.Host = "https://example.com" }, []string{"PUSHER_HOST"}},
		{"host with path", func(c *PusherConfig) { c.Host = "example.com/x" }, []string{"PUSHER_HOST"}},
		{"negative timeout", func(c *PusherConfig) { c.Timeout = -time.Second }, []string{"timeout"}},
		{"everything missing", func(c *PusherConfig) { *c = PusherConfig{} },
			[]string{"PUSHER_APP_ID", "PUSHER_APP_KEY", "PUSHER_APP_SECRET", "PUSHER_APP_CLUSTER"}},
	}
	checkConfigs(t, valid, tests, NewPusher)
}

func TestPusherCheckChannel(t *testing.T) {
	p := newTestPusher(t, pushertest.New(t, testAppID, testKey, testSecret), nil)
	checkChannels(t, "pusher", p.CheckChannel, []channelCase{
		{"live-page-42", ""},
		{"a-Z_0=9@,.;", ""},
		{strings.Repeat("c", 164), ""},
		{strings.Repeat("c", 165), "longer than 164"},
		{"", "does not match"},
		{"with space", "does not match"},
		{"slash/", "does not match"},
		{"é", "does not match"},
		{"private-encrypted-page", "encrypted channels"},
		{"private-page", ""},
	})
}

func TestPusherNameAndLimits(t *testing.T) {
	p := newTestPusher(t, pushertest.New(t, testAppID, testKey, testSecret), nil)
	if p.Name() != "pusher" {
		t.Errorf("Name = %q", p.Name())
	}
	if got := p.Limits(); got != (Limits{MaxData: 10240, MaxBatch: 10}) {
		t.Errorf("Limits = %+v", got)
	}
}

// TestPusherPublishOrder sends more messages than a batch holds: they go in
// sequential calls and arrive in order, byte for byte.
func TestPusherPublishOrder(t *testing.T) {
	srv := pushertest.New(t, testAppID, testKey, testSecret)
	p := newTestPusher(t, srv, nil)
	var msgs []Message
	for i := range 23 {
		msgs = append(msgs, Message{
			Channel: fmt.Sprintf("page-%d", i%3),
			Data:    fmt.Appendf(nil, `{"renders":{"p%d":{"show":true,"content":"<p>&amp; %d</p>"}},"removals":[]}`, i, i),
		})
	}
	if err := p.Publish(t.Context(), msgs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := srv.Events()
	if len(got) != len(msgs) {
		t.Fatalf("%d events arrived, want %d", len(got), len(msgs))
	}
	for i, m := range msgs {
		if got[i].Channel != m.Channel || got[i].Name != EventName || got[i].Data != string(m.Data) {
			t.Errorf("event %d = %+v, want channel %q data %s", i, got[i], m.Channel, m.Data)
		}
	}
	if srv.Requests() != 3 {
		t.Errorf("%d requests, want 3 (10+10+3)", srv.Requests())
	}
}

func TestPusherPublishData(t *testing.T) {
	html := `{"renders":{"8a4e":{"show":true,"content":"<p>&amp;</p><script>\"x\"</script>"}},"removals":["b1"]}`
	// Exactly MaxData bytes as sent, most of them characters encoding/json would
	// escape to six bytes each.
	prefix, suffix := `{"renders":{"a":{"show":true,"content":"`, `"}},"removals":[]}`
	full := prefix + strings.Repeat("<&>", 10240)[:10240-len(prefix)-len(suffix)] + suffix
	tests := []struct {
		name string
		data string
	}{
		{"html unescaped", html},
		{"exactly the limit, html-heavy", full},
		{"unicode", `{"renders":{"a":{"show":true,"content":"<p>café \u2028 😀</p>"}},"removals":[]}`},
		{"empty update", `{"renders":{},"removals":[]}`},
	}
	if len(full) != 10240 {
		t.Fatalf("test data of %d bytes, want 10240", len(full))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := pushertest.New(t, testAppID, testKey, testSecret)
			p := newTestPusher(t, srv, nil)
			if err := p.Publish(t.Context(), []Message{{Channel: "page-1", Data: []byte(tc.data)}}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			got := srv.Events()
			if len(got) != 1 || got[0].Data != tc.data {
				t.Fatalf("arrived %+v, want data %s", got, tc.data)
			}
		})
	}
}

func TestPusherPublishFailures(t *testing.T) {
	retryDate := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name     string
		setup    func(srv *pushertest.Server)
		edit     func(*PusherConfig)
		msgs     []Message
		rejected bool
		status   int
		retry    [2]time.Duration // RetryAfter within [min, max]
		requests int64
	}{
		{name: "429 with Retry-After seconds", setup: func(s *pushertest.Server) { s.FailNext(1, 429, "3") },
			status: 429, retry: [2]time.Duration{3 * time.Second, 3 * time.Second}, requests: 1},
		{name: "503 with Retry-After date", setup: func(s *pushertest.Server) { s.FailNext(1, 503, retryDate) },
			status: 503, retry: [2]time.Duration{20 * time.Second, 31 * time.Second}, requests: 1},
		{name: "500", setup: func(s *pushertest.Server) { s.FailNext(1, 500, "") }, status: 500, requests: 1},
		{name: "413", setup: func(s *pushertest.Server) { s.FailNext(1, 413, "") }, status: 413, requests: 1},
		{name: "wrong secret", edit: func(c *PusherConfig) { c.Secret = "wrong-secret" }, status: 401, requests: 1},
		{name: "wrong key", edit: func(c *PusherConfig) { c.Key = "wrong-key" }, status: 401, requests: 1},
		{name: "invalid channel", msgs: []Message{{Channel: "a b", Data: []byte("{}")}}, rejected: true},
		{name: "channel too long", msgs: []Message{{Channel: strings.Repeat("c", 165), Data: []byte("{}")}}, rejected: true},
		{name: "data too large", msgs: []Message{{Channel: "c", Data: make([]byte, 10241)}}, rejected: true},
		{name: "bad message after a full batch", msgs: append(testMessages("c", 12), Message{Channel: "#", Data: []byte("{}")}),
			rejected: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := pushertest.New(t, testAppID, testKey, testSecret)
			if tc.setup != nil {
				tc.setup(srv)
			}
			p := newTestPusher(t, srv, tc.edit)
			msgs := tc.msgs
			if msgs == nil {
				msgs = testMessages("page-1", 3)
			}
			perr := providerError(t, p.Publish(t.Context(), msgs), "pusher")
			if perr.Rejected != tc.rejected || perr.Status != tc.status {
				t.Errorf("Rejected %v Status %d, want %v and %d (%v)", perr.Rejected, perr.Status, tc.rejected, tc.status, perr)
			}
			if perr.RetryAfter < tc.retry[0] || perr.RetryAfter > tc.retry[1] {
				t.Errorf("RetryAfter %v, want within %v", perr.RetryAfter, tc.retry)
			}
			if srv.Requests() != tc.requests {
				t.Errorf("%d requests, want %d", srv.Requests(), tc.requests)
			}
			if n := len(srv.Events()); n != 0 {
				t.Errorf("%d events accepted, want none", n)
			}
		})
	}
}

// TestPusherPublishStopsAtFirstFailure: the calls after a failed one are not made,
// so nothing newer overtakes what failed.
func TestPusherPublishStopsAtFirstFailure(t *testing.T) {
	srv := pushertest.New(t, testAppID, testKey, testSecret)
	srv.SetScript(func(n int64, _ []pushertest.Event) pushertest.Fault {
		if n == 2 {
			return pushertest.Fault{Status: http.StatusBadGateway}
		}
		return pushertest.Fault{}
	})
	p := newTestPusher(t, srv, nil)
	perr := providerError(t, p.Publish(t.Context(), testMessages("page-1", 25)), "pusher")
	if perr.Status != http.StatusBadGateway || !strings.Contains(perr.Error(), "messages 11 to 20 of 25") {
		t.Errorf("error %v, want a 502 on messages 11 to 20", perr)
	}
	if srv.Requests() != 2 || len(srv.Events()) != 10 {
		t.Errorf("%d requests and %d events, want 2 and 10", srv.Requests(), len(srv.Events()))
	}
}

func isTimeout(err error) bool {
	var nerr net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout())
}

func TestPusherTimeout(t *testing.T) {
	srv := pushertest.New(t, testAppID, testKey, testSecret)
	srv.SetDelay(time.Minute)
	p := newTestPusher(t, srv, func(c *PusherConfig) { c.Timeout = 100 * time.Millisecond })
	start := time.Now()
	err := p.Publish(t.Context(), testMessages("page-1", 1))
	perr := providerError(t, err, "pusher")
	if perr.Status != 0 || perr.Rejected || !isTimeout(err) {
		t.Fatalf("error %v (status %d), want a timeout with status 0", err, perr.Status)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Publish took %v with a 100ms timeout", d)
	}
}

func TestPusherContext(t *testing.T) {
	tests := []struct {
		name string
		ctx  func(parent context.Context) (context.Context, context.CancelFunc)
		end  func(cancel context.CancelFunc) // ends ctx once the request reached the fake
		want error
	}{
		{"cancel", context.WithCancel, func(cancel context.CancelFunc) { cancel() }, context.Canceled},
		{"deadline", func(parent context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(parent, 200*time.Millisecond)
		}, func(context.CancelFunc) {}, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := pushertest.New(t, testAppID, testKey, testSecret)
			arrived := make(chan struct{}, 1)
			srv.SetScript(func(int64, []pushertest.Event) pushertest.Fault {
				arrived <- struct{}{}
				return pushertest.Fault{Delay: time.Minute}
			})
			p := newTestPusher(t, srv, func(c *PusherConfig) { c.Timeout = time.Minute })
			ctx, cancel := tc.ctx(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Publish(ctx, testMessages("page-1", 1)) }()
			select {
			case <-arrived:
			case <-time.After(10 * time.Second):
				t.Fatal("the request never reached the fake")
			}
			tc.end(cancel)
			select {
			case err := <-done:
				perr := providerError(t, err, "pusher")
				if perr.Status != 0 || !errors.Is(err, tc.want) {
					t.Fatalf("error %v (status %d), want %v with status 0", err, perr.Status, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Publish did not return after its context ended")
			}
		})
	}
}

func TestPusherCancelledBeforeStart(t *testing.T) {
	srv := pushertest.New(t, testAppID, testKey, testSecret)
	p := newTestPusher(t, srv, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := p.Publish(ctx, testMessages("page-1", 3))
	if perr := providerError(t, err, "pusher"); perr.Status != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if srv.Requests() != 0 {
		t.Errorf("%d requests after cancellation", srv.Requests())
	}
}

// TestPusherConcurrent publishes from many goroutines through one Pusher: each
// channel's messages arrive in order, and -race finds no shared state.
func TestPusherConcurrent(t *testing.T) {
	srv := pushertest.New(t, testAppID, testKey, testSecret)
	p := newTestPusher(t, srv, nil)
	const workers, perWorker = 8, 35
	providertest.Concurrently(t, workers, func(w int) error {
		msgs := testMessages(fmt.Sprintf("page-%d", w), perWorker)
		for start := 0; start < perWorker; start += 7 {
			if err := p.Publish(t.Context(), msgs[start:min(start+7, perWorker)]); err != nil {
				return fmt.Errorf("Publish: %w", err)
			}
		}
		return nil
	})
	next := map[string]int{}
	for _, e := range srv.Events() {
		want := fmt.Sprintf(`{"renders":{},"removals":["%d"]}`, next[e.Channel])
		if e.Data != want {
			t.Fatalf("channel %s: got %s, want %s", e.Channel, e.Data, want)
		}
		next[e.Channel]++
	}
	for w := range workers {
		if n := next[fmt.Sprintf("page-%d", w)]; n != perWorker {
			t.Errorf("page-%d: %d events, want %d", w, n, perWorker)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"99999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			if got := parseRetryAfter(tc.value, now); got != tc.want {
				t.Fatalf("parseRetryAfter(%q) = %v, want %v", tc.value, got, tc.want)
			}
		})
	}
}
