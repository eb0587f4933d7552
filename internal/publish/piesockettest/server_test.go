package piesockettest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/publish/providertest"
)

const (
	apiKey = "pie-key"
	secret = "pie-s3cret"
)

type call struct {
	method string
	path   string
	ctype  string
	body   string
}

func (c call) send(t *testing.T, s *Server) (int, string, http.Header) {
	t.Helper()
	method := cmp.Or(c.method, http.MethodPost)
	path := cmp.Or(c.path, Path)
	ctype := cmp.Or(c.ctype, "application/json")
	base, _ := strings.CutSuffix(s.URL(), Path)
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	resp, b := providertest.Do(t, req)
	return resp.StatusCode, string(b), resp.Header
}

func body(key, sec, channel, message string) string {
	b, _ := json.Marshal(map[string]any{"key": key, "secret": sec, "channelId": channel})
	return strings.TrimSuffix(string(b), "}") + `,"message":` + message + "}"
}

func TestServerVerifies(t *testing.T) {
	update := `{"renders":{"p1":{"show":true,"content":"<p>&amp;</p>"}},"removals":[]}`
	tests := []struct {
		name   string
		call   call
		status int
		want   string // in the answer
	}{
		{"accepted", call{body: body(apiKey, secret, "live-page_42", update)}, 200, `"success":true`},
		{"numeric channel", call{body: `{"key":"pie-key","secret":"pie-s3cret","channelId":42,"message":{}}`}, 200, "success"},
		{"30 characters", call{body: body(apiKey, secret, strings.Repeat("c", 30), "{}")}, 200, "success"},
		{"31 characters", call{body: body(apiKey, secret, strings.Repeat("c", 31), "{}")}, 400, "channelId"},
		{"dot", call{body: body(apiKey, secret, "a.b", "{}")}, 400, "channelId"},
		{"empty channel", call{body: body(apiKey, secret, "", "{}")}, 400, "channelId"},
		{"wrong key", call{body: body("other", secret, "c", "{}")}, 401, "Unknown API key"},
		{"wrong secret", call{body: body(apiKey, "nope", "c", "{}")}, 401, "Invalid API secret"},
		{"no secret", call{body: `{"key":"pie-key","channelId":"c","message":{}}`}, 401, "secret"},
		{"no message", call{body: `{"key":"pie-key","secret":"pie-s3cret","channelId":"c"}`}, 400, "message is required"},
		{"too large", call{body: body(apiKey, secret, "c", `"`+strings.Repeat("x", DefaultMaxMessageBytes)+`"`)}, 413, "too large"},
		{"not JSON", call{body: `{"key":`}, 400, "Invalid JSON"},
		{"content type", call{body: body(apiKey, secret, "c", "{}"), ctype: "text/plain"}, 400, "Content-Type"},
		{"path", call{path: "/api/other", body: body(apiKey, secret, "c", "{}")}, 404, "Not found"},
		{"GET", call{method: http.MethodGet}, 405, "not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t, apiKey, secret)
			status, answer, _ := tc.call.send(t, s)
			if status != tc.status || !strings.Contains(answer, tc.want) {
				t.Fatalf("answer %d %s, want %d with %q", status, answer, tc.status, tc.want)
			}
			msgs := s.Messages()
			if status != 200 {
				if len(msgs) != 0 || s.Rejected() != 1 {
					t.Errorf("refused request: %d messages, %d rejected", len(msgs), s.Rejected())
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("recorded %+v", msgs)
			}
		})
	}
}

// TestServerKeepsMessage records the message field byte for byte: no re-encoding.
func TestServerKeepsMessage(t *testing.T) {
	s := New(t, apiKey, secret)
	update := `{"renders":{"b":{"show":true,"content":"<p>é &amp; \u2028</p>"},"a":{"show":false,"content":""}},"removals":["c"]}`
	if status, answer, _ := (call{body: body(apiKey, secret, "page-1", update)}).send(t, s); status != 200 {
		t.Fatalf("answer %d %s", status, answer)
	}
	got := s.Messages()
	if len(got) != 1 || got[0].Channel != "page-1" || got[0].Data != update {
		t.Fatalf("recorded %+v, want data %s", got, update)
	}
}

func TestServerFailNext(t *testing.T) {
	s := New(t, apiKey, secret)
	s.FailNext(2, Fault{Status: 429, RetryAfter: "4"})
	for i := range 3 {
		status, answer, header := (call{body: body(apiKey, secret, "c", "{}")}).send(t, s)
		switch {
		case i < 2 && (status != 429 || header.Get("Retry-After") != "4" || !strings.Contains(answer, "Too Many Requests")):
			t.Errorf("request %d: %d %s %v", i, status, answer, header)
		case i == 2 && status != 200:
			t.Errorf("request %d: %d %s", i, status, answer)
		}
	}
	if len(s.Messages()) != 1 || s.Rejected() != 2 || s.Requests() != 3 {
		t.Errorf("%d messages, %d rejected, %d requests", len(s.Messages()), s.Rejected(), s.Requests())
	}
}

func TestServerScript(t *testing.T) {
	s := New(t, apiKey, secret)
	s.SetScript(func(n int64, msg *Message) Fault {
		if msg != nil && msg.Channel == "sick" {
			return Fault{Status: 200, Body: `{"success":false,"error":"nope"}`}
		}
		return Fault{}
	})
	if status, answer, _ := (call{body: body(apiKey, secret, "sick", "{}")}).send(t, s); status != 200 || answer != `{"success":false,"error":"nope"}` {
		t.Errorf("answer %d %s", status, answer)
	}
	if status, _, _ := (call{body: body(apiKey, secret, "well", "{}")}).send(t, s); status != 200 {
		t.Errorf("answer %d", status)
	}
	if got := s.Messages(); len(got) != 1 || got[0].Channel != "well" {
		t.Errorf("recorded %+v", got)
	}
}

func TestServerMaxMessageBytes(t *testing.T) {
	s := New(t, apiKey, secret)
	s.SetMaxMessageBytes(10)
	if status, _, _ := (call{body: body(apiKey, secret, "c", `"12345678"`)}).send(t, s); status != 200 {
		t.Errorf("10 bytes: %d", status)
	}
	if status, _, _ := (call{body: body(apiKey, secret, "c", `"123456789"`)}).send(t, s); status != 413 {
		t.Errorf("11 bytes: %d", status)
	}
}

func TestServerDelay(t *testing.T) {
	s := New(t, apiKey, secret)
	s.SetDelay(time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL(), strings.NewReader(body(apiKey, secret, "c", "{}")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a deadline", err)
	}
	if len(s.Messages()) != 0 {
		t.Error("a message was recorded")
	}
}

func TestServerWait(t *testing.T) {
	s := New(t, apiKey, secret)
	done := make(chan int)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n := -1
		if err := s.Wait(ctx, func(msgs []Message) bool { n = len(msgs); return n >= 3 }); err != nil {
			n = -1
		}
		done <- n
	}()
	for i := range 3 {
		(call{body: body(apiKey, secret, fmt.Sprintf("c%d", i), "{}")}).send(t, s)
	}
	if n := <-done; n != 3 {
		t.Fatalf("Wait saw %d messages", n)
	}
	if got := s.WaitMessages(t, 3, time.Second); len(got) != 3 || got[2].Channel != "c2" {
		t.Errorf("WaitMessages: %+v", got)
	}
}

func TestServerConnections(t *testing.T) {
	s := New(t, apiKey, secret)
	for range 5 {
		(call{body: body(apiKey, secret, "c", "{}")}).send(t, s)
	}
	if s.Connections() != 1 {
		t.Errorf("%d connections for 5 sequential requests read to the end, want 1", s.Connections())
	}
}
