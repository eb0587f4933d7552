package providertest

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestControls(t *testing.T) {
	var srv Server
	rec := NewRecorder[string]("pusher", "events")
	var faults Faults[int, string]
	c := NewControls(&srv, rec, &faults)

	c.SetDelay(time.Minute)
	if srv.delay.Load() != int64(time.Minute) {
		t.Errorf("SetDelay did not reach the server's counts")
	}
	srv.CountRequest()
	if c.Requests() != 1 {
		t.Errorf("Requests %d after one request", c.Requests())
	}

	c.SetScript(func(n int64, req string) int { return int(n) * len(req) })
	c.FailNext(1, http.StatusServiceUnavailable)
	if f := faults.Next(1, "ab"); f != http.StatusServiceUnavailable {
		t.Errorf("first answer %d, want FailNext's", f)
	}
	if f := faults.Next(2, "ab"); f != 4 {
		t.Errorf("second answer %d, want the script's 4", f)
	}

	rec.Add("a")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Wait(ctx, func(items []string) bool { return len(items) == 1 && items[0] == "a" }); err != nil {
		t.Errorf("Wait on the recorder: %v", err)
	}
}

func TestFailf(t *testing.T) {
	err := Failf(http.StatusBadRequest, "Batch too large (%d > %d events)", 11, 10)
	if err.Status != http.StatusBadRequest || err.Error() != "Batch too large (11 > 10 events)" {
		t.Errorf("Failf: %d %q", err.Status, err.Error())
	}
}
