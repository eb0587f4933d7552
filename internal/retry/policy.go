// Package retry decides whether and when a failed provider publish is tried again:
// the classification of errors shared by every provider, and the backoff policy.
package retry

import (
	"math/rand/v2"
	"time"
)

// Policy is exponential backoff with full jitter, capped per wait, limited by attempts
// and by the time since the first failure.
type Policy struct {
	Initial     time.Duration // the first wait (before jitter)
	Max         time.Duration // the cap of one wait
	Multiplier  float64       // growth per attempt; 2 when zero
	MaxAttempts int           // attempts in all, the first included; 0 = no limit
	MaxElapsed  time.Duration // give up once this long has passed since the first failure; 0 = no limit
}

// Why says why a failed publish is not tried again. Its values are also the outcome
// label of liverelay_publish_errors_total.
type Why string

const (
	Permanent Why = "permanent" // the error is not retryable (for example a 4xx)
	Exhausted Why = "exhausted" // retryable, but the attempts or the time allowed ran out
)

// Decision is what to do after a failed attempt.
type Decision struct {
	Retry bool
	Wait  time.Duration
	Why   Why // set when Retry is false
}

// Next decides after the attempt-th attempt (1 for the first) failed with err, the
// first failure having happened at first. A provider's Retry-After is honoured even
// when it is longer than Max, as long as it stays within MaxElapsed.
func (p Policy) Next(err error, attempt int, first, now time.Time) Decision {
	c := Classify(err)
	if !c.Retryable {
		return Decision{Why: Permanent}
	}
	if p.MaxAttempts > 0 && attempt >= p.MaxAttempts {
		return Decision{Why: Exhausted}
	}
	wait := p.backoff(attempt)
	if c.RetryAfter > wait {
		wait = c.RetryAfter
	}
	if p.MaxElapsed > 0 && now.Add(wait).Sub(first) > p.MaxElapsed {
		return Decision{Why: Exhausted}
	}
	return Decision{Retry: true, Wait: wait}
}

// backoff is a random wait in [d/2, d], d = Initial·Multiplier^(attempt-1) capped at
// Max: jitter spreads the retries of many channels failing at once.
func (p Policy) backoff(attempt int) time.Duration {
	m := p.Multiplier
	if m <= 1 {
		m = 2
	}
	d := float64(p.Initial)
	for i := 1; i < attempt && d < float64(p.Max); i++ {
		d *= m
	}
	if d > float64(p.Max) {
		d = float64(p.Max)
	}
	half := d / 2
	return time.Duration(half + rand.Float64()*half)
}
