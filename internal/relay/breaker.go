package relay

import "time"

// breaker keeps a provider that is down for everyone from being hammered by every
// channel retrying on its own schedule. After Threshold calls in a row
// fail with a retryable error it opens: no call goes out until the cool-down is over;
// then one probe call goes (half-open); its success closes the breaker, its failure
// opens it again for twice as long, up to the retry policy's cap. A provider's
// Retry-After lengthens the cool-down.
//
// It lives in the loop, whose goroutine alone touches it. Jobs wait in the ready
// queue while it is open, so their retry attempts are not used up by an outage.
type breaker struct {
	threshold int
	minCool   time.Duration
	maxCool   time.Duration

	failures int
	open     bool
	until    time.Time
	cool     time.Duration
	probing  bool // a probe call is out
}

func newBreaker(threshold int, minCool, maxCool time.Duration) *breaker {
	return &breaker{threshold: threshold, minCool: minCool, maxCool: maxCool}
}

// allow reports whether a call may go out now, and whether it is the one probe of
// the half-open state.
func (b *breaker) allow(now time.Time) (ok, probe bool) {
	switch {
	case !b.open:
		return true, false
	case b.probing || now.Before(b.until):
		return false, false
	default:
		b.probing = true
		return true, true
	}
}

// waitUntil is when allow may next say yes, while the breaker is open.
func (b *breaker) waitUntil() (time.Time, bool) {
	if !b.open || b.probing {
		return time.Time{}, false
	}
	return b.until, true
}

// release takes back a probe allow granted but no call used.
func (b *breaker) release() { b.probing = false }

// success records a call the provider accepted.
func (b *breaker) success() {
	b.failures, b.open, b.probing, b.cool = 0, false, false, 0
}

// failure records a call that failed with a retryable error (while open, only the
// probe's counts); it returns true when the breaker opened or reopened.
func (b *breaker) failure(now time.Time, retryAfter time.Duration) bool {
	if b.open && !b.probing {
		return false
	}
	b.failures++
	if !b.open && b.failures < b.threshold {
		return false
	}
	switch {
	case b.cool == 0:
		b.cool = b.minCool
	case b.probing:
		b.cool = min(2*b.cool, b.maxCool)
	}
	wait := max(b.cool, retryAfter)
	b.open, b.probing, b.until = true, false, now.Add(wait)
	return true
}
