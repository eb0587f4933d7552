package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/liverelay/liverelay/internal/publish/ablytest"
	"github.com/liverelay/liverelay/internal/publish/providertest"
)

const (
	testAblyKeyName = "appid.keyid"
	testAblyKey     = testAblyKeyName + ":" + testSecret
)

// idMessages are n updates of channel with ids <base>-<i>, as the relay makes them:
// each id its own.
func idMessages(channel, base string, n int) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{
			Channel: channel,
			Data:    fmt.Appendf(nil, `{"renders":{"p%d":{"show":true,"content":"<p>%s &amp; %d</p>"}},"removals":[]}`, i, channel, i),
			ID:      fmt.Sprintf("%s-%d", base, i),
		}
	}
	return msgs
}

func newTestAbly(t *testing.T, srv *ablytest.Server, edit func(*AblyConfig)) *Ably {
	t.Helper()
	cfg := AblyConfig{APIKey: testAblyKey, RESTHost: srv.Host(), Port: srv.Port(), TLS: false, Timeout: 5 * time.Second}
	return providertest.Build(t, "NewAbly", NewAbly, cfg, edit)
}

func TestAblyConfigValidate(t *testing.T) {
	valid := AblyConfig{APIKey: testAblyKey, TLS: true}
	tests := []configCase[AblyConfig]{
		{"defaults", func(*AblyConfig) {}, nil},
		{"free account", func(c *AblyConfig) { c.MaxMessageBytes = AblyFreeMaxMessageBytes }, nil},
		{"own host and port", func(c *AblyConfig) { c.RESTHost, c.Port = "ably.internal", 8443 }, nil},
		{"plain HTTP to own host", func(c *AblyConfig) { c.RESTHost, c.Port, c.TLS = "localhost", 8080, false }, nil},
		{"no key", func(c *AblyConfig) { c.APIKey = "" }, []string{"ABLY_API_KEY"}},
		{"key without secret", func(c *AblyConfig) { c.APIKey = testAblyKeyName }, []string{"ABLY_API_KEY"}},
		{"key without key id", func(c *AblyConfig) { c.APIKey = "appid:" + testSecret }, []string{"ABLY_API_KEY"}},
		{"token instead of key", func(c *AblyConfig) { c.APIKey = "xVLyHw.tokentoken" }, []string{"ABLY_API_KEY"}},
		{"host with scheme", func(c *AblyConfig) { c.RESTHost = "https://rest.ably.io" }, []string{"ABLY_REST_HOST"}},
		{"host with port", func(c *AblyConfig) { c.RESTHost = "localhost:8080" }, []string{"ABLY_REST_HOST", "ABLY_PORT"}},
		{"port out of range", func(c *AblyConfig) { c.Port = 70000 }, []string{"ABLY_PORT"}},
		{"plain HTTP to Ably", func(c *AblyConfig) { c.TLS = false }, []string{"ABLY_TLS", "ABLY_REST_HOST"}},
		{"message size too small", func(c *AblyConfig) { c.MaxMessageBytes = 100 }, []string{"ABLY_MAX_MESSAGE_BYTES"}},
		{"message size too large", func(c *AblyConfig) { c.MaxMessageBytes = 4 << 20 }, []string{"ABLY_MAX_MESSAGE_BYTES"}},
		{"negative timeout", func(c *AblyConfig) { c.Timeout = -time.Second }, []string{"timeout"}},
		{"everything wrong", func(c *AblyConfig) { *c = AblyConfig{Port: -1, MaxMessageBytes: -1} },
			[]string{"ABLY_API_KEY", "ABLY_PORT", "ABLY_TLS", "ABLY_MAX_MESSAGE_BYTES"}},
	}
	checkConfigs(t, valid, tests, NewAbly)
}

func TestAblyCheckChannel(t *testing.T) {
	a := newTestAbly(t, ablytest.New(t, testAblyKey), nil)
	checkChannels(t, "ably", a.CheckChannel, []channelCase{
		{"live-page-42", ""},
		{"ns:page/1 é?#", ""},
		{"a[b]", ""},
		{"", "empty"},
		{"[meta]channel.lifecycle", "starts with '['"},
		{"[?rewind=1]page", "starts with '['"},
		{":page", "starts with ':'"},
		{"page\n1", "line break"},
		{"page\r", "line break"},
		{"\xff", "UTF-8"},
	})
}

func TestAblyNameAndLimits(t *testing.T) {
	srv := ablytest.New(t, testAblyKey)
	tests := []struct {
		max  int
		want Limits
	}{
		{0, Limits{MaxData: 65536 - len("live-page-update"), MaxBatch: 100}},
		{AblyFreeMaxMessageBytes, Limits{MaxData: 16384 - len("live-page-update"), MaxBatch: 100}},
	}
	for _, tc := range tests {
		a := newTestAbly(t, srv, func(c *AblyConfig) { c.MaxMessageBytes = tc.max })
		if a.Name() != "ably" || a.Limits() != tc.want {
			t.Errorf("max %d: Name %q Limits %+v, want %+v", tc.max, a.Name(), a.Limits(), tc.want)
		}
	}
}

// TestAblyFreeAccount publishes at the free accounts' limit, which the fake enforces
// as Ably counts it (name, data, clientId and extras; not the id): the provider's own
// count is the same, to the byte.
func TestAblyFreeAccount(t *testing.T) {
	srv := ablytest.New(t, testAblyKey)
	srv.SetMaxMessageBytes(AblyFreeMaxMessageBytes)
	a := newTestAbly(t, srv, func(c *AblyConfig) { c.MaxMessageBytes = AblyFreeMaxMessageBytes })
	data := providertest.UpdateOfSize(t, a.Limits().MaxData)
	msgs := []Message{
		{Channel: "page-1", Data: data, ID: strings.Repeat("9", 20) + "-" + strings.Repeat("z", 13) + "-999"},
		{Channel: "page-1", Data: data, ID: strings.Repeat("i", 500)}, // ids do not count
		{Channel: "page-2", Data: data, ID: "2-0"},
	}
	for _, call := range [][]Message{msgs[:2], msgs} { // a channel publish, then a batch
		if err := a.Publish(t.Context(), call); err != nil {
			t.Fatalf("Publish at the limit: %v", err)
		}
	}
	got := srv.Messages()
	if len(got) != 3 || srv.Duplicates() != 2 || srv.Rejected() != 0 {
		t.Fatalf("%d messages delivered, %d dropped as repeats, %d requests refused; want 3, 2 and none",
			len(got), srv.Duplicates(), srv.Rejected())
	}
	for _, m := range got {
		if ablytest.Size(m) != AblyFreeMaxMessageBytes {
			t.Errorf("message %s is %d bytes as Ably counts, want exactly %d", m.ID, ablytest.Size(m), AblyFreeMaxMessageBytes)
		}
	}
	over := Message{Channel: "page-1", Data: providertest.UpdateOfSize(t, a.Limits().MaxData+1), ID: "3-0"}
	if perr := providerError(t, a.Publish(t.Context(), []Message{over}), "ably"); !perr.Rejected || !strings.Contains(perr.Error(), "over 16368") {
		t.Errorf("error %v, want a rejection of the data", perr)
	}
}

// TestAblyMessageFormat checks what Ably receives: the relay's id, the event name,
// the update as JSON text with encoding "json", so that subscribers get an object.
func TestAblyMessageFormat(t *testing.T) {
	srv := ablytest.New(t, testAblyKey)
	a := newTestAbly(t, srv, nil)
	data := `{"renders":{"b":{"show":true,"content":"<p>é &amp; \u2028</p>"},"a":{"show":false,"content":""}},"removals":["c"]}`
	msgs := []Message{{Channel: "page-1", Data: []byte(data), ID: "4711-abc-0"}}
	for _, call := range [][]Message{msgs, append(msgs[:1:1], Message{Channel: "page-2", Data: []byte(data), ID: "4712-abc-0"})} {
		if err := a.Publish(t.Context(), call); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	got := srv.Messages()
	if len(got) != 2 || srv.Duplicates() != 1 {
		t.Fatalf("recorded %+v with %d duplicates, want page-1 once (the batch repeated it) and page-2", got, srv.Duplicates())
	}
	for i, want := range []ablytest.Message{
		{Channel: "page-1", Name: EventName, ID: "4711-abc-0:0", Data: data, Encoding: "json"},
		{Channel: "page-2", Name: EventName, ID: "4712-abc-0:0", Data: data, Encoding: "json"},
	} {
		want.Received = got[i].Received
		if got[i] != want {
			t.Errorf("message %d = %+v, want %+v", i, got[i], want)
		}
	}
}

// TestAblyOwnKeys: every message goes in a publish of its own with the id <ID>:0,
// whose idempotency key is the message's ID, on the channel and batch paths alike. The
// parts of a split update all arrive; sent again, every one is dropped as a repeat.
func TestAblyOwnKeys(t *testing.T) {
	tests := []struct {
		name string
		ids  []string
	}{
		{"relay ids", []string{"77-k3y-0", "77-k3y-1", "77-k3y-2"}},
		// Ids of the <base>:<idx> form are keys of their own too: Ably would read
		// 77-k3y:1 sent as it is as the key 77-k3y, a repeat of 77-k3y:0.
		{"ids of Ably's indexed form", []string{"77-k3y:0", "77-k3y:1", "77-k3y:2"}},
	}
	for _, tc := range tests {
		for _, channels := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s, %d channels", tc.name, channels), func(t *testing.T) {
				srv := ablytest.New(t, testAblyKey)
				a := newTestAbly(t, srv, nil)
				var msgs []Message
				for c := range channels {
					for i, id := range tc.ids {
						msgs = append(msgs, Message{Channel: fmt.Sprintf("page-%d", c), ID: id,
							Data: fmt.Appendf(nil, `{"renders":{"p%d":{"show":true,"content":"part %d"}},"removals":[]}`, i, i)})
					}
				}
				for attempt := range 2 { // the second is a retry: Ably drops every message
					if err := a.Publish(t.Context(), msgs); err != nil {
						t.Fatalf("attempt %d: %v", attempt+1, err)
					}
				}
				got := srv.Messages()
				if len(got) != len(msgs) || srv.Duplicates() != int64(len(msgs)) || srv.Rejected() != 0 {
					t.Fatalf("%d delivered, %d dropped as repeats, %d refused; want %d, %d and none",
						len(got), srv.Duplicates(), srv.Rejected(), len(msgs), len(msgs))
				}
				next := map[string]int{}
				for _, m := range got {
					i := next[m.Channel]
					next[m.Channel]++
					if want := tc.ids[i] + ":0"; m.ID != want || !strings.Contains(m.Data, fmt.Sprintf("part %d", i)) {
						t.Errorf("%s message %d: id %q data %s, want id %q and part %d", m.Channel, i, m.ID, m.Data, want, i)
					}
				}
			})
		}
	}
}

// TestAblyRetryKeepsIDs: a publish that failed halfway is retried with the same ids,
// and Ably drops what it already has.
func TestAblyRetryKeepsIDs(t *testing.T) {
	for _, channels := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d channels", channels), func(t *testing.T) {
			srv := ablytest.New(t, testAblyKey)
			a := newTestAbly(t, srv, nil)
			var msgs []Message
			for c := range channels {
				msgs = append(msgs, idMessages(fmt.Sprintf("page-%d", c), fmt.Sprintf("5%d-base", c), 3)...)
			}
			srv.SetScript(func(n int64, _ []ablytest.Message) ablytest.Fault {
				if n == 2 {
					return ablytest.Fault{Status: http.StatusBadGateway}
				}
				return ablytest.Fault{}
			})
			err := a.Publish(t.Context(), msgs)
			var partial *PartialError
			if !errors.As(err, &partial) || len(partial.Errs) != len(msgs) {
				t.Fatalf("error %v, want a PartialError for %d messages", err, len(msgs))
			}
			for i, e := range partial.Errs {
				accepted := i%3 == 0 // every channel's first message went in the first request
				if (e == nil) != accepted {
					t.Errorf("message %d: error %v, want accepted %v", i, e, accepted)
				} else if e != nil {
					// The 502, or "not sent" (no status): both retryable.
					if perr := providerError(t, e, "ably"); perr.Status != http.StatusBadGateway && perr.Status != 0 {
						t.Errorf("message %d: %v (status %d), want the 502 or not sent", i, e, perr.Status)
					}
				}
			}
			if err := a.Publish(t.Context(), msgs); err != nil {
				t.Fatalf("retry: %v", err)
			}
			got := srv.Messages()
			if len(got) != len(msgs) || srv.Duplicates() != int64(channels) {
				t.Fatalf("%d messages, %d duplicates; want %d and %d", len(got), srv.Duplicates(), len(msgs), channels)
			}
			next := map[string]int{}
			for _, m := range got {
				want := fmt.Sprintf("5%s-base-%d:0", strings.TrimPrefix(m.Channel, "page-"), next[m.Channel])
				if m.ID != want {
					t.Errorf("channel %s: id %q, want %q", m.Channel, m.ID, want)
				}
				next[m.Channel]++
			}
		})
	}
}

// TestAblyBatchPartialFailure: only the channels that failed get an error, each
// classified by its own status and code.
func TestAblyBatchPartialFailure(t *testing.T) {
	for _, format := range []ablytest.BatchFormat{ablytest.BatchLegacy, ablytest.BatchV2} {
		t.Run(fmt.Sprintf("format %d", format), func(t *testing.T) {
			srv := ablytest.New(t, testAblyKey)
			srv.SetBatchFormat(format)
			srv.FailChannel("page-b", 1, ablytest.Fault{Status: 429, Code: 42911, Message: "rate limit"})
			srv.FailChannel("page-c", 1, ablytest.Fault{Status: 401, Code: 40160, Message: "not permitted"})
			a := newTestAbly(t, srv, nil)
			var msgs []Message
			for _, ch := range []string{"page-a", "page-b", "page-c", "page-d"} {
				msgs = append(msgs, idMessages(ch, ch, 2)...)
			}
			err := a.Publish(t.Context(), msgs)
			var partial *PartialError
			if !errors.As(err, &partial) || len(partial.Errs) != len(msgs) {
				t.Fatalf("error %v, want a PartialError for %d messages", err, len(msgs))
			}
			// The status and code retry.Classify reads: 429 and 42911 are retryable,
			// 401 and 40160 are not.
			want := []struct{ status, code int }{{}, {}, {429, 42911}, {429, 42911}, {401, 40160}, {401, 40160}, {}, {}}
			for i, w := range want {
				e := partial.Errs[i]
				if w.status == 0 {
					if e != nil {
						t.Errorf("message %d (%s): %v, want accepted", i, msgs[i].Channel, e)
					}
					continue
				}
				perr := providerError(t, e, "ably")
				if perr.Status != w.status || perr.Code != w.code {
					t.Errorf("message %d (%s): %v (status %d code %d), want status %d code %d",
						i, msgs[i].Channel, e, perr.Status, perr.Code, w.status, w.code)
				}
			}
			var got []string
			for _, m := range srv.Messages() {
				got = append(got, m.ID)
			}
			// Two rounds: the first message of every channel, then the second of those
			// that did not fail.
			if fmt.Sprint(got) != "[page-a-0:0 page-d-0:0 page-a-1:0 page-d-1:0]" || srv.Requests() != 2 {
				t.Errorf("published %v in %d requests", got, srv.Requests())
			}
		})
	}
}

// TestAblyBatchWholeFailure: a batch request refused as a whole fails every message
// alike; a later request of the same call is not sent.
func TestAblyBatchWholeFailure(t *testing.T) {
	tests := []struct {
		name  string
		fault ablytest.Fault
		wait  time.Duration
	}{
		{"rate limit", ablytest.Fault{Status: 429, Code: 42911, RetryAfter: "5"}, 5 * time.Second},
		{"server error", ablytest.Fault{Status: 500}, 0},
		{"credentials", ablytest.Fault{Status: 401, Code: 40101}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := ablytest.New(t, testAblyKey)
			srv.FailNext(1, tc.fault)
			a := newTestAbly(t, srv, nil)
			msgs := append(idMessages("page-a", "a", 2), idMessages("page-b", "b", 1)...)
			perr := providerError(t, a.Publish(t.Context(), msgs), "ably")
			code := tc.fault.Code
			if code == 0 {
				code = tc.fault.Status * 100
			}
			if perr.Status != tc.fault.Status || perr.Code != code || perr.RetryAfter != tc.wait {
				t.Errorf("error %v (status %d code %d, retry after %v), want %d, %d, %v",
					perr, perr.Status, perr.Code, perr.RetryAfter, tc.fault.Status, code, tc.wait)
			}
			if srv.Requests() != 1 || len(srv.Messages()) != 0 {
				t.Errorf("%d requests, %d messages", srv.Requests(), len(srv.Messages()))
			}
		})
	}
}

// TestAblyBatchBodyLimit: a call of 100 channels of large messages goes in several
// requests, each within 2 MiB.
func TestAblyBatchBodyLimit(t *testing.T) {
	srv := ablytest.New(t, testAblyKey)
	a := newTestAbly(t, srv, nil)
	data := providertest.UpdateOfSize(t, a.Limits().MaxData) // HTML-heavy: it grows when JSON-escaped
	var msgs []Message
	for i := range a.Limits().MaxBatch {
		msgs = append(msgs, Message{Channel: fmt.Sprintf("page-%d", i), Data: data, ID: fmt.Sprintf("%d:0", i)})
	}
	if err := a.Publish(t.Context(), msgs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if got := srv.Messages(); len(got) != len(msgs) {
		t.Fatalf("%d messages arrived, want %d", len(got), len(msgs))
	}
	if srv.Requests() < 4 || srv.Rejected() != 0 {
		t.Errorf("%d requests (%d rejected), want several within the body limit", srv.Requests(), srv.Rejected())
	}
}

func TestParseBatchAnswer(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string // channel=code pairs, 0 for success; "error" when it fails
	}{
		{"legacy success", 201, `[{"channel":"a","messageId":"x"},{"channel":"b","messageId":"y"}]`, "a=0 b=0"},
		{"one spec as an object", 201, `{"channel":"a","messageId":"x"}`, "a=0"},
		{"partial", 400, `{"error":{"code":40020,"statusCode":400},"batchResponse":[{"channel":"a","messageId":"x"},{"channel":"b","error":{"code":40160,"statusCode":401}}]}`, "a=0 b=40160"},
		{"v2", 201, `[{"successCount":1,"failureCount":1,"results":[{"channel":"a","messageId":"x"},{"channel":"b","error":{"code":42911,"statusCode":429}}]}]`, "a=0 b=42911"},
		{"v2 inside batchResponse", 400, `{"error":{"code":40020},"batchResponse":[{"successCount":0,"failureCount":1,"results":[{"channel":"b","error":{"code":40010}}]}]}`, "b=40010"},
		{"other 400", 400, `{"error":{"code":40000,"statusCode":400}}`, "error"},
		{"partial without results", 400, `{"error":{"code":40020,"statusCode":400}}`, "error"},
		{"garbage", 201, `<html>`, "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBatchAnswer(tc.status, []byte(tc.body))
			if err != nil {
				if tc.want != "error" {
					t.Fatalf("parseBatchAnswer: %v", err)
				}
				return
			}
			var pairs []string
			for _, ch := range []string{"a", "b"} {
				info, ok := got[ch]
				switch {
				case !ok:
				case info == nil:
					pairs = append(pairs, ch+"=0")
				default:
					pairs = append(pairs, fmt.Sprintf("%s=%d", ch, info.Code))
				}
			}
			if strings.Join(pairs, " ") != tc.want {
				t.Errorf("got %v, want %s", pairs, tc.want)
			}
		})
	}
}

// TestAblyConnectionReuse: ably-go alone opens a connection per publish (it closes
// answers unread); the provider's transport keeps one, for channel and batch
// publishes and error answers alike.
func TestAblyConnectionReuse(t *testing.T) {
	t.Run("ably-go alone", func(t *testing.T) {
		srv := ablytest.New(t, testAblyKey)
		client, err := ably.NewREST(ably.WithKey(testAblyKey), ably.WithRESTHost(srv.Host()), ably.WithPort(srv.Port()),
			ably.WithTLS(false), ably.WithInsecureAllowBasicAuthWithoutTLS(), ably.WithUseBinaryProtocol(false),
			ably.WithHTTPClient(NewHTTPClient(5*time.Second)), ably.WithLogLevel(ably.LogNone))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if err := client.Channels.Get("page-1").Publish(t.Context(), EventName, fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		// The library's unread answers, measured: if this fails, ably-go reads its
		// answers now, and ablyTransport's drain is no longer needed.
		if srv.Connections() < 5 {
			t.Errorf("ably-go alone opened %d connections for 5 publishes, want one each", srv.Connections())
		}
	})
	t.Run("provider", func(t *testing.T) {
		srv := ablytest.New(t, testAblyKey)
		a := newTestAbly(t, srv, nil)
		for i := range 10 {
			msgs := idMessages("page-1", fmt.Sprint(i), 1)
			if i%2 == 1 {
				msgs = append(msgs, idMessages("page-2", fmt.Sprint(i), 1)...)
			}
			if err := a.Publish(t.Context(), msgs); err != nil {
				t.Fatalf("Publish %d: %v", i, err)
			}
		}
		srv.FailChannel("page-2", 1, ablytest.Fault{Status: 400, Code: 40010})
		srv.FailNext(1, ablytest.Fault{Status: 503})
		for range 2 {
			if err := a.Publish(t.Context(), append(idMessages("page-1", "e", 1), idMessages("page-2", "e", 1)...)); err == nil {
				t.Fatal("a scripted failure went through")
			}
		}
		if n := srv.Connections(); n != 1 {
			t.Errorf("%d connections for %d sequential requests, want 1", n, srv.Requests())
		}
	})
}

// TestAblyReleasesChannels: the library's channel objects do not pile up.
func TestAblyReleasesChannels(t *testing.T) {
	srv := ablytest.New(t, testAblyKey)
	a := newTestAbly(t, srv, nil)
	for i := range 50 {
		if err := a.Publish(t.Context(), idMessages(fmt.Sprintf("page-%d", i), "x", 1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(a.client.Channels.Iterate()); n != 0 {
		t.Errorf("the client keeps %d channel objects", n)
	}
}

// TestAblyNeverLogsTheSecret runs failures of every kind with every log level on.
func TestAblyNeverLogsTheSecret(t *testing.T) {
	srv := ablytest.New(t, testAblyKey)
	core, logs := observer.New(zap.DebugLevel)
	cfg := AblyConfig{APIKey: testAblyKey, RESTHost: srv.Host(), Port: srv.Port(), Timeout: 200 * time.Millisecond}
	a, err := NewAbly(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(1, ablytest.Fault{Status: 401, Code: 40101})
	a.Publish(t.Context(), idMessages("page-1", "a", 1))
	srv.FailNext(1, ablytest.Fault{Status: 500})
	a.Publish(t.Context(), append(idMessages("page-1", "b", 1), idMessages("page-2", "b", 1)...))
	srv.SetDelay(time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	a.Publish(ctx, idMessages("page-1", "c", 1))
	if logs.Len() == 0 {
		t.Fatal("nothing was logged")
	}
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		if strings.Contains(line, testSecret) {
			t.Errorf("log line shows the secret: %s", line)
		}
	}
}

// TestAblyRefusesBeforeSending: what Ably or its subscribers could not take is
// refused before any request.
func TestAblyRefusesBeforeSending(t *testing.T) {
	srv := ablytest.New(t, testAblyKey)
	a := newTestAbly(t, srv, nil)
	for name, m := range map[string]Message{
		"not JSON":      {Channel: "page-1", Data: []byte(`{"renders":`), ID: "1-0"},
		"not UTF-8":     {Channel: "page-1", Data: []byte("{\"a\":\"\xff\"}"), ID: "1-0"},
		"data too long": {Channel: "page-1", Data: providertest.UpdateOfSize(t, a.Limits().MaxData+1), ID: "1-0"},
		"bad channel":   {Channel: "[meta]x", Data: []byte(`{}`), ID: "1-0"},
	} {
		msgs := append(idMessages("page-2", "ok", 1), m)
		if perr := providerError(t, a.Publish(t.Context(), msgs), "ably"); !perr.Rejected || !strings.Contains(perr.Error(), "message 2") {
			t.Errorf("%s: %v, want a rejection of message 2", name, perr)
		}
	}
	if srv.Requests() != 0 {
		t.Errorf("%d requests", srv.Requests())
	}
}
