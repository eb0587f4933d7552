package bench

import (
	"errors"
	"testing"
	"time"
)

func TestSteadyIsTheDifferenceOfTwoSamples(t *testing.T) {
	t0 := time.Now()
	a := sample{at: t0, events: 1000, worker: 2 * time.Second, server: time.Second, mallocs: 5e5}
	b := sample{at: t0.Add(4 * time.Second), events: 9000, worker: 2*time.Second + 200*time.Millisecond, server: 3 * time.Second, mallocs: 9e5}
	st, err := steadyOf(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 8000 || st.Seconds != 4 || st.Mallocs != 4e5 {
		t.Fatalf("steady = %+v", st)
	}
	if got := st.PerThousand(st.Worker); got != 25 { // 200 ms over 8,000 events
		t.Fatalf("worker per 1,000 events = %v core-ms, want 25", got)
	}
	if got := st.PerThousand(st.Server); got != 250 {
		t.Fatalf("server per 1,000 events = %v core-ms, want 250", got)
	}
	if (Steady{}).PerThousand(time.Second) != 0 {
		t.Fatal("no events: want 0")
	}
	if _, err := steadyOf(sample{err: errors.New("gone")}, b); err == nil {
		t.Fatal("a failed sample gave no error")
	}
}

func TestWarmUp(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{
		10 * time.Second: 2 * time.Second,
		3 * time.Second:  time.Second,
		time.Second:      500 * time.Millisecond,
		time.Minute:      12 * time.Second,
	} {
		if got := warmUp(d); got != want {
			t.Errorf("warmUp(%v) = %v, want %v", d, got, want)
		}
	}
}
