package consumer

import (
	"errors"
	"testing"
	"time"
)

func TestLease(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const limit = 5 * time.Second
	tests := []struct {
		name   string
		steps  func(l *lease) // watchdog calls before the check
		at     time.Duration  // when the check is made, after t0
		doubt  bool
		verify bool // the last watch asked for a verification
	}{
		{"a running connected worker", func(l *lease) { l.watch(t0.Add(250*time.Millisecond), true) }, 400 * time.Millisecond, false, false},
		{"a check right after a long pause, before the watchdog ran", func(*lease) {}, 6 * time.Second, true, false},
		{"the watchdog saw the pause", func(l *lease) { l.watch(t0.Add(6*time.Second), true) }, 6 * time.Second, true, true},
		{"a short disconnection", func(l *lease) {
			l.watch(t0.Add(time.Second), false)
			l.watch(t0.Add(3*time.Second), false)
		}, 3 * time.Second, false, false},
		{"a long disconnection", func(l *lease) {
			for s := 1; s <= 7; s++ {
				l.watch(t0.Add(time.Duration(s)*time.Second), false)
			}
		}, 7 * time.Second, true, false},
		{"back after a long disconnection", func(l *lease) {
			for s := 1; s <= 7; s++ {
				l.watch(t0.Add(time.Duration(s)*time.Second), false)
			}
			l.watch(t0.Add(7500*time.Millisecond), true)
		}, 7500 * time.Millisecond, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLease(limit, t0)
			tt.steps(l)
			err := l.check(t0.Add(tt.at))
			if got := errors.Is(err, errInDoubt); got != tt.doubt {
				t.Fatalf("in doubt = %v, want %v", got, tt.doubt)
			}
			if got := l.watch(t0.Add(tt.at), !tt.doubt || tt.verify); tt.verify && !got {
				t.Fatal("the watchdog did not ask to verify the pins")
			}
			if tt.doubt {
				l.verified()
				if err := l.check(t0.Add(tt.at + 100*time.Millisecond)); err != nil && !tt.verify {
					return // still disconnected: verifying needs the server
				} else if err != nil {
					t.Fatalf("after verification: %v", err)
				}
			}
		})
	}
}
