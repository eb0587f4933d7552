package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/liverelay/liverelay/internal/publish/piesockettest"
	"github.com/liverelay/liverelay/internal/publish/providertest"
)

func newTestPieSocket(t *testing.T, srv *piesockettest.Server, edit func(*PieSocketConfig)) *PieSocket {
	t.Helper()
	cfg := PieSocketConfig{APIKey: testKey, Secret: testSecret, APIURL: srv.URL(), Timeout: 5 * time.Second}
	return providertest.Build(t, "NewPieSocket", NewPieSocket, cfg, edit)
}

func TestPieSocketConfigValidate(t *testing.T) {
	valid := PieSocketConfig{APIKey: testKey, Secret: testSecret, ClusterID: "demo"}
	tests := []configCase[PieSocketConfig]{
		{"cluster", func(*PieSocketConfig) {}, nil},
		{"dotted cluster", func(c *PieSocketConfig) { c.ClusterID = "s1234.nyc1" }, nil},
		{"URL", func(c *PieSocketConfig) { c.ClusterID, c.APIURL = "", "http://localhost:8080/api/publish" }, nil},
		{"bigger messages", func(c *PieSocketConfig) { c.MaxMessageBytes = 65536 }, nil},
		{"no key", func(c *PieSocketConfig) { c.APIKey = "" }, []string{"PIESOCKET_API_KEY"}},
		{"no secret", func(c *PieSocketConfig) { c.Secret = "" }, []string{"PIESOCKET_SECRET"}},
		{"no cluster nor URL", func(c *PieSocketConfig) { c.ClusterID = "" }, []string{"PIESOCKET_CLUSTER_ID", "PIESOCKET_API_URL"}},
		{"bad cluster", func(c *PieSocketConfig) { c.ClusterID = "demo/x" }, []string{"PIESOCKET_CLUSTER_ID"}},
		{"URL without scheme", func(c *PieSocketConfig) { c.APIURL = "demo.piesocket.com/api/publish" }, []string{"PIESOCKET_API_URL"}},
		{"URL with credentials", func(c *PieSocketConfig) { c.APIURL = "https://u:p@demo.piesocket.com/api/publish" }, []string{"PIESOCKET_API_URL"}},
		{"message size", func(c *PieSocketConfig) { c.MaxMessageBytes = -1 }, []string{"PIESOCKET_MAX_MESSAGE_BYTES"}},
		{"negative timeout", func(c *PieSocketConfig) { c.Timeout = -time.Second }, []string{"timeout"}},
		{"everything missing", func(c *PieSocketConfig) { *c = PieSocketConfig{} },
			[]string{"PIESOCKET_API_KEY", "PIESOCKET_SECRET", "PIESOCKET_CLUSTER_ID"}},
	}
	checkConfigs(t, valid, tests, NewPieSocket)
}

func TestPieSocketURL(t *testing.T) {
	p, err := NewPieSocket(PieSocketConfig{APIKey: testKey, Secret: testSecret, ClusterID: "s1234.nyc1"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if p.url != "https://s1234.nyc1.piesocket.com/api/publish" {
		t.Errorf("url %q", p.url)
	}
}

func TestPieSocketCheckChannel(t *testing.T) {
	p := newTestPieSocket(t, piesockettest.New(t, testKey, testSecret), nil)
	const rule = "1 to 30 characters of A-Z, a-z, 0-9, '_' and '-'"
	checkChannels(t, "piesocket", p.CheckChannel, []channelCase{
		{"live-page_42", ""},
		{strings.Repeat("c", 30), ""},
		{strings.Repeat("c", 31), rule},
		{"", rule},
		{"a.b", rule},
		{"a:b", rule},
		{"é", rule},
	})
}

func TestPieSocketNameAndLimits(t *testing.T) {
	srv := piesockettest.New(t, testKey, testSecret)
	if p := newTestPieSocket(t, srv, nil); p.Name() != "piesocket" || p.Limits() != (Limits{MaxData: 16384, MaxBatch: 1}) {
		t.Errorf("Name %q Limits %+v", p.Name(), p.Limits())
	}
	if p := newTestPieSocket(t, srv, func(c *PieSocketConfig) { c.MaxMessageBytes = 65536 }); p.Limits().MaxData != 65536 {
		t.Errorf("Limits %+v", p.Limits())
	}
}

// TestPieSocketRequest checks the request byte for byte: the update embedded as it
// is, HTML unescaped, as Wagtail Live's PieSocket publisher sends it.
func TestPieSocketRequest(t *testing.T) {
	bodies := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		bodies <- string(b)
		io.WriteString(w, `{"success":true}`)
	}))
	defer srv.Close()
	p, err := NewPieSocket(PieSocketConfig{APIKey: "k\"ey", Secret: "se/cret", APIURL: srv.URL + "/api/publish"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	data := `{"renders":{"b":{"show":true,"content":"<p>é &amp; \u2028</p>"}},"removals":["c"]}`
	if err := p.Publish(t.Context(), []Message{{Channel: "page-1", Data: []byte(data), ID: "1:0"}}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	want := `{"key":"k\"ey","secret":"se/cret","channelId":"page-1","message":` + data + `}`
	if got := <-bodies; got != want {
		t.Errorf("body %s\nwant %s", got, want)
	}
}

// TestPieSocketRefusal: a success status whose answer says no is a permanent error.
func TestPieSocketRefusal(t *testing.T) {
	for _, answer := range []string{`{"success":false}`, `{"error":"Channel limit reached"}`, `{"success":true,"error":{"code":3}}`} {
		t.Run(answer, func(t *testing.T) {
			srv := piesockettest.New(t, testKey, testSecret)
			srv.FailNext(1, piesockettest.Fault{Status: 200, Body: answer})
			p := newTestPieSocket(t, srv, nil)
			perr := providerError(t, p.Publish(t.Context(), idMessages("page-1", "a", 1)), "piesocket")
			// A 200 is classified as permanent: not a 408, 425, 429 or 5xx.
			if perr.Status != 200 || perr.Rejected || !strings.Contains(perr.Error(), "refused") {
				t.Errorf("error %v, want a refusal with status 200", perr)
			}
		})
	}
	srv := piesockettest.New(t, testKey, testSecret)
	srv.FailNext(2, piesockettest.Fault{Status: 200, Body: `not json`})
	if err := newTestPieSocket(t, srv, nil).Publish(t.Context(), idMessages("page-1", "a", 1)); err != nil {
		t.Errorf("an answer that is not JSON, with 200: %v", err)
	}
}

// TestPieSocketStopsAtFirstFailure: later messages of the failed channel share its
// error; other channels' are not sent and may be retried.
func TestPieSocketStopsAtFirstFailure(t *testing.T) {
	srv := piesockettest.New(t, testKey, testSecret)
	srv.SetScript(func(n int64, _ *piesockettest.Message) piesockettest.Fault {
		if n == 2 {
			return piesockettest.Fault{Status: http.StatusBadRequest}
		}
		return piesockettest.Fault{}
	})
	p := newTestPieSocket(t, srv, nil)
	msgs := append(idMessages("page-a", "a", 3), idMessages("page-b", "b", 1)...)
	var partial *PartialError
	if err := p.Publish(t.Context(), msgs); !errors.As(err, &partial) || len(partial.Errs) != 4 {
		t.Fatalf("error %v, want a PartialError", err)
	}
	if partial.Errs[0] != nil || partial.Errs[1] == nil || partial.Errs[2] != partial.Errs[1] {
		t.Errorf("errors %v: want the first accepted, the others of page-a failed alike", partial.Errs)
	}
	if e := providerError(t, partial.Errs[1], "piesocket"); e.Status != http.StatusBadRequest {
		t.Errorf("page-a: %v, want the 400", e)
	}
	// No status: retryable, as the 400 concerned page-a only.
	if e := providerError(t, partial.Errs[3], "piesocket"); e.Status != 0 || e.Rejected || !strings.Contains(e.Error(), "not sent") {
		t.Errorf("page-b: %v, want \"not sent\" without a status", e)
	}
	if srv.Requests() != 2 || len(srv.Messages()) != 1 {
		t.Errorf("%d requests, %d messages", srv.Requests(), len(srv.Messages()))
	}
}

// TestPieSocketNeverShowsTheSecret: the secret travels in the body, so it must stay
// out of errors and logs, even when the server echoes it.
func TestPieSocketNeverShowsTheSecret(t *testing.T) {
	secret := `pie"sec/ret`
	escaped := `pie\"sec\/ret`
	tests := []struct {
		name  string
		fault piesockettest.Fault
	}{
		{"401 echoing the secret", piesockettest.Fault{Status: 401, Body: `{"error":"invalid secret pie\"sec/ret"}`}},
		{"401 echoing it escaped", piesockettest.Fault{Status: 401, Body: `{"error":"invalid secret ` + escaped + `"}`}},
		{"200 refusal echoing it", piesockettest.Fault{Status: 200, Body: `{"success":false,"secret":"pie\"sec/ret"}`}},
		{"429 in plain text", piesockettest.Fault{Status: 429, Body: "slow down, " + secret}},
		{"long answer", piesockettest.Fault{Status: 500, Body: strings.Repeat("x", 290) + secret}},
		{"timeout", piesockettest.Fault{Delay: time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := piesockettest.New(t, testKey, secret)
			srv.FailNext(1, tc.fault)
			core, logs := observer.New(zap.DebugLevel)
			p, err := NewPieSocket(PieSocketConfig{APIKey: testKey, Secret: secret, APIURL: srv.URL(), Timeout: 200 * time.Millisecond}, zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			err = p.Publish(t.Context(), idMessages("page-1", "a", 1))
			if err == nil {
				t.Fatal("Publish succeeded")
			}
			t.Logf("error: %v", err)
			for _, leak := range []string{secret, escaped, "sec/ret", `sec\/ret`} {
				if strings.Contains(err.Error(), leak) || strings.Contains(fmt.Sprintf("%+v", err), leak) {
					t.Errorf("error shows the secret: %v", err)
				}
				for _, e := range logs.All() {
					if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, leak) {
						t.Errorf("log line shows the secret: %s", line)
					}
				}
			}
		})
	}
}

// TestPieSocketCancelDuringRequest leaves nothing behind when the call is abandoned.
func TestPieSocketCancelDuringRequest(t *testing.T) {
	srv := piesockettest.New(t, testKey, testSecret)
	srv.SetDelay(time.Minute)
	p := newTestPieSocket(t, srv, func(c *PieSocketConfig) { c.Timeout = time.Minute })
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := p.Publish(ctx, idMessages("page-1", "a", 2))
	if perr := providerError(t, err, "piesocket"); perr.Status != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want a deadline with status 0", err)
	}
	if srv.Requests() != 1 {
		t.Errorf("%d requests, want 1: the second message is not sent", srv.Requests())
	}
}

// TestPieSocketRefusesBeforeSending: the update is embedded in the request as it is,
// so it must be JSON.
func TestPieSocketRefusesBeforeSending(t *testing.T) {
	srv := piesockettest.New(t, testKey, testSecret)
	p := newTestPieSocket(t, srv, nil)
	for name, m := range map[string]Message{
		"not JSON":  {Channel: "page-1", Data: []byte(`{"renders":`)},
		"two JSONs": {Channel: "page-1", Data: []byte(`{} {}`)},
		"not UTF-8": {Channel: "page-1", Data: []byte("{\"a\":\"\xff\"}")},
		"too long":  {Channel: "page-1", Data: []byte(`"` + strings.Repeat("x", 16383) + `"`)},
		"channel":   {Channel: "page.1", Data: []byte(`{}`)},
	} {
		msgs := append(idMessages("page-2", "ok", 1), m)
		if perr := providerError(t, p.Publish(t.Context(), msgs), "piesocket"); !perr.Rejected || !strings.Contains(perr.Error(), "message 2") {
			t.Errorf("%s: %v, want a rejection of message 2", name, perr)
		}
	}
	if srv.Requests() != 0 {
		t.Errorf("%d requests", srv.Requests())
	}
}
