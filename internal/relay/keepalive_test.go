package relay_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/liverelay/liverelay/internal/publish"
)

// TestKeepAlive: messages held through a long retry are marked in progress often
// enough for JetStream not to deliver them again. cmd/worker sets KeepAlive to AckWait/3,
// so a message must be marked within 2×KeepAlive of its arrival and every KeepAlive
// after that.
func TestKeepAlive(t *testing.T) {
	tests := []struct {
		name      string
		keepAlive time.Duration
		prelude   func(h *harness)
	}{
		{"on a quiet relay", 5 * time.Second, func(*harness) {}},
		{"just after other activity", 10 * time.Second, func(h *harness) {
			advance(10*time.Second + time.Millisecond) // just after a keep-alive tick
			h.submit(renders("other", "o", "1"))
			advance(time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := baseConfig()
				cfg.Window = 0
				cfg.KeepAlive = tt.keepAlive
				p := &fakeProvider{publish: failWith("page", 1, &publish.Error{Provider: "fake", Status: 429, RetryAfter: time.Minute})}
				h := startRelay(t, cfg, p, nil)
				tt.prelude(h)
				srcs := h.submit(renders("page", "a", "1"), renders("page", "b", "1"))
				advance(2 * time.Minute)

				if n := len(p.CallsWith("page")); n != 2 {
					t.Fatalf("%d calls with the page, want a failure and a retry", n)
				}
				checkAckedOnce(t, srcs...)
				ka := tt.keepAlive
				for _, s := range srcs {
					marks, acked := s.ProgressAt(), s.AckedAt()
					held := acked.Sub(s.receivedAt)
					if n, lo, hi := len(marks), int(held/ka)-2, int(held/ka)+1; n < lo || n > hi {
						t.Errorf("seq %d held %v: marked in progress %d times, want about every %v (%d to %d)", s.seq, held, n, ka, lo, hi)
					}
					if len(marks) == 0 {
						continue
					}
					if first := marks[0].Sub(s.receivedAt); first > 2*ka {
						t.Errorf("seq %d first marked in progress %v after it arrived, more than 2×KeepAlive (%v): with AckWait = 3×KeepAlive it is redelivered", s.seq, first, 2*ka)
					}
					for i := 1; i < len(marks); i++ {
						if gap := marks[i].Sub(marks[i-1]); gap > ka {
							t.Errorf("seq %d: %v between in-progress marks, more than KeepAlive %v", s.seq, gap, ka)
						}
					}
					if last := marks[len(marks)-1]; last.After(acked) {
						t.Errorf("seq %d marked in progress at %v, after its ack at %v", s.seq, last.Sub(h.start), acked.Sub(h.start))
					}
				}
			})
		})
	}
}
