package brokertest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	WaitFor(t, time.Second, "the third call", func() bool {
		calls++
		return calls == 3
	})
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

func TestWaitForFailsNamingWhatItWaitedFor(t *testing.T) {
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		WaitFor(rec, 50*time.Millisecond, "a letter", func() bool { return false })
	}()
	<-done
	if !strings.Contains(rec.failure, "waiting for a letter") {
		t.Fatalf("failure %q does not name what it waited for", rec.failure)
	}
}

// recorder is a test that records its fatal failure instead of failing.
type recorder struct {
	testing.TB
	failure string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
