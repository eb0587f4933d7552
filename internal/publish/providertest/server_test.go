package providertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestServerCounts(t *testing.T) {
	var s Server
	s.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.CountRequest()
		if r.URL.Path == "/bad" {
			s.CountRejected()
			w.WriteHeader(http.StatusBadRequest)
		}
		w.Write([]byte(strconv.FormatInt(n, 10)))
	}))
	if !strings.HasPrefix(s.URL(), "http://") || !strings.HasSuffix(s.URL(), ":"+strconv.Itoa(s.Addr().Port)) {
		t.Errorf("URL %s, address %v", s.URL(), s.Addr())
	}
	for i, path := range []string{"/", "/bad", "/"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := Do(t, req)
		if string(body) != strconv.Itoa(i+1) || (resp.StatusCode == http.StatusBadRequest) != (path == "/bad") {
			t.Errorf("request %d to %s: %d %q", i+1, path, resp.StatusCode, body)
		}
	}
	if s.Requests() != 3 || s.Rejected() != 1 || s.Connections() != 1 {
		t.Errorf("%d requests, %d rejected, %d connections; want 3, 1, 1", s.Requests(), s.Rejected(), s.Connections())
	}
}

func TestServerSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s Server // not started: only the client can cut a sleep short
		start := time.Now()
		if !s.Sleep(t.Context(), 0) || time.Since(start) != 0 {
			t.Errorf("Sleep without delay waited %v", time.Since(start))
		}
		s.SetDelay(time.Minute)
		if !s.Sleep(t.Context(), time.Second) || time.Since(start) != time.Minute+time.Second {
			t.Errorf("Sleep of the delay plus a second took %v", time.Since(start))
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start = time.Now()
		if s.Sleep(ctx, 0) || time.Since(start) != 5*time.Second {
			t.Errorf("Sleep of a client that gives up after 5s took %v", time.Since(start))
		}
	})
}

// TestServerSleepEndsAtClose cuts a sleep short when the test that started the
// server ends.
func TestServerSleepEndsAtClose(t *testing.T) {
	woke := make(chan bool, 1)
	t.Run("server", func(st *testing.T) {
		var s Server
		s.Start(st, http.NotFoundHandler())
		s.SetDelay(time.Hour)
		go func() { woke <- s.Sleep(t.Context(), 0) }()
	})
	select {
	case full := <-woke:
		if full {
			t.Error("Sleep reports a full hour")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Sleep went on after the server closed")
	}
}

func TestServerReject(t *testing.T) {
	var s Server
	w := httptest.NewRecorder()
	s.Reject(w, http.StatusTooManyRequests, "3", "application/json", `{"error":"slow down"}`)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "3" ||
		w.Header().Get("Content-Type") != "application/json" || w.Body.String() != `{"error":"slow down"}` {
		t.Errorf("Reject answered %d %v %q", w.Code, w.Header(), w.Body)
	}
	w = httptest.NewRecorder()
	s.Reject(w, http.StatusBadRequest, "", "text/plain; charset=utf-8", "bad\n")
	if _, ok := w.Header()["Retry-After"]; ok || w.Code != http.StatusBadRequest {
		t.Errorf("Reject without retryAfter answered %d %v", w.Code, w.Header())
	}
	if s.Rejected() != 2 || s.Requests() != 0 {
		t.Errorf("%d rejected, %d requests; want 2, 0", s.Rejected(), s.Requests())
	}
}
