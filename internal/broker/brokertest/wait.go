package brokertest

import (
	"testing"
	"time"
)

// WaitFor polls cond every 10 ms until it holds, for a test waiting on the server, or
// on a part of liverelay running against it, to reach a state (a stored letter, a
// ready consumer); it fails t, naming what it waited for, when cond does not hold
// within the given time.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		<-tick.C
	}
}
