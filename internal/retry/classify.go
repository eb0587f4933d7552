package retry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/liverelay/liverelay/internal/publish"
)

// Class is what an error says about trying again.
type Class struct {
	Retryable  bool
	RetryAfter time.Duration // the provider's requested wait, when it gave one
}

// Classify sorts a publish error:
//   - retryable: no response (network error, timeout), 408, 425, 429, 5xx, and the
//     provider rate-limit codes (Ably 429xx);
//   - permanent: rejected before sending (invalid channel, too large) and every other
//     4xx (400 bad request, 401/403 auth, 413 too large), and anything unknown that is
//     not a network error.
func Classify(err error) Class {
	if err == nil {
		return Class{}
	}
	var pe *publish.Error
	if errors.As(err, &pe) {
		switch {
		case pe.Rejected:
			return Class{}
		case pe.Code >= 42900 && pe.Code < 43000:
			return Class{Retryable: true, RetryAfter: pe.RetryAfter}
		case pe.Status == 0:
			return Class{Retryable: true}
		case pe.Status == http.StatusTooManyRequests, pe.Status == http.StatusRequestTimeout,
			pe.Status == http.StatusTooEarly, pe.Status >= 500:
			return Class{Retryable: true, RetryAfter: pe.RetryAfter}
		default:
			return Class{}
		}
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return Class{Retryable: true}
	}
	return Class{}
}
