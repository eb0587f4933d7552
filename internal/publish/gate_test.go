package publish

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A request whose gate refuses never reaches the server; one whose gate allows does.
func TestGateStopsARequestUnsent(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer srv.Close()
	client := NewHTTPClient(5 * time.Second)
	refuse := errors.New("partition moved on")
	for _, tc := range []struct {
		name string
		gate func() error
		hits int32
	}{
		{"no gate", nil, 1},
		{"gate allows", func() error { return nil }, 1},
		{"gate refuses", func() error { return refuse }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			ctx := context.Background()
			if tc.gate != nil {
				ctx = WithGate(ctx, tc.gate)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
			resp, err := client.Do(req)
			if resp != nil {
				resp.Body.Close()
			}
			if tc.hits == 0 && !errors.Is(err, refuse) {
				t.Fatalf("Do = %v, want the gate's error", err)
			}
			if got := hits.Load(); got != tc.hits {
				t.Fatalf("the server saw %d requests, want %d", got, tc.hits)
			}
		})
	}
}
