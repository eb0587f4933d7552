package worker

import (
	"testing"
	"time"
)

func TestTimings(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		got := Timings(5 * time.Second)
		want := Timing{PullExpiry: time.Second, PinnedTTL: 6500 * time.Millisecond, Handover: 4 * time.Second,
			KeepAlive: 5 * time.Second / 3, Redelivery: 7 * time.Second}
		if got != want {
			t.Errorf("Timings(5s) = %+v, want %+v", got, want)
		}
	})
	for _, ackWait := range []time.Duration{time.Second, 5 * time.Second, time.Minute} {
		t.Run(ackWait.String(), func(t *testing.T) {
			got := Timings(ackWait)
			if got.PinnedTTL <= ackWait+got.PullExpiry {
				t.Errorf("PinnedTTL %s is not past the ack wait and a pull expiry", got.PinnedTTL)
			}
			if got.Handover < minHandover || got.Handover > max(got.PinnedTTL-got.PullExpiry, minHandover) {
				t.Errorf("Handover %s does not end before the pin could run out (%s)", got.Handover, got.PinnedTTL)
			}
			if got.KeepAlive >= ackWait || got.KeepAlive < minKeepAlive {
				t.Errorf("KeepAlive %s, want below the ack wait and at least %s", got.KeepAlive, minKeepAlive)
			}
			if got.Redelivery <= ackWait {
				t.Errorf("Redelivery %s is not past the ack wait", got.Redelivery)
			}
		})
	}
}
