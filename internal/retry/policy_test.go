package retry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/publish"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		retry bool
		after time.Duration
	}{
		{"500", &publish.Error{Status: 500}, true, 0},
		{"503 with Retry-After", &publish.Error{Status: 503, RetryAfter: 2 * time.Second}, true, 2 * time.Second},
		{"429 with Retry-After", &publish.Error{Status: 429, RetryAfter: 3 * time.Second}, true, 3 * time.Second},
		{"408", &publish.Error{Status: 408}, true, 0},
		{"network, no status", &publish.Error{Err: errors.New("connection refused")}, true, 0},
		{"ably rate limit code on 400", &publish.Error{Status: 400, Code: 42910}, true, 0},
		{"400", &publish.Error{Status: 400}, false, 0},
		{"401", &publish.Error{Status: 401}, false, 0},
		{"403", &publish.Error{Status: 403}, false, 0},
		{"413", &publish.Error{Status: 413}, false, 0},
		{"rejected before sending", &publish.Error{Rejected: true}, false, 0},
		{"wrapped 500", fmt.Errorf("publish: %w", &publish.Error{Status: 502}), true, 0},
		{"bare deadline", context.DeadlineExceeded, true, 0},
		{"bare net error", &net.OpError{Op: "dial", Err: errors.New("refused")}, true, 0},
		{"unknown", errors.New("boom"), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Classify(tt.err)
			if c.Retryable != tt.retry || c.RetryAfter != tt.after {
				t.Fatalf("Classify = %+v, want retry=%v after=%v", c, tt.retry, tt.after)
			}
		})
	}
}

func TestPolicyNext(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second, MaxAttempts: 5, MaxElapsed: time.Minute}
	first := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	retryable := &publish.Error{Status: 500}
	for attempt := 1; attempt < 5; attempt++ {
		ceiling := 100 * time.Millisecond << (attempt - 1)
		if ceiling > time.Second {
			ceiling = time.Second
		}
		for i := 0; i < 100; i++ {
			d := p.Next(retryable, attempt, first, first)
			if !d.Retry || d.Wait < ceiling/2 || d.Wait > ceiling {
				t.Fatalf("attempt %d: %+v, want a wait in [%v, %v]", attempt, d, ceiling/2, ceiling)
			}
		}
	}
	if d := p.Next(retryable, 5, first, first); d.Retry || d.Why != Exhausted {
		t.Fatalf("after MaxAttempts: %+v", d)
	}
	if d := p.Next(retryable, 2, first, first.Add(59*time.Second+900*time.Millisecond)); d.Retry || d.Why != Exhausted {
		t.Fatalf("past MaxElapsed: %+v", d)
	}
	if d := p.Next(&publish.Error{Status: 401}, 1, first, first); d.Retry || d.Why != Permanent {
		t.Fatalf("401: %+v", d)
	}
	if d := p.Next(&publish.Error{Status: 429, RetryAfter: 7 * time.Second}, 1, first, first); !d.Retry || d.Wait != 7*time.Second {
		t.Fatalf("Retry-After above the cap must be honoured: %+v", d)
	}
	unlimited := Policy{Initial: time.Millisecond, Max: time.Millisecond}
	if d := unlimited.Next(retryable, 1000, first, first.Add(24*time.Hour)); !d.Retry {
		t.Fatalf("no limits set: %+v", d)
	}
}
