// Package publish sends merged updates to a hosted WebSocket provider (Pusher Channels,
// and the stdout provider for running without an account), within the provider's
// limits, and reports failures with what retrying needs to know.
package publish

import (
	"fmt"
	"time"
)

// EventName is the provider event that Wagtail Live's browser code listens to.
const EventName = "live-page-update"

// Message is one provider message: the update data of one channel.
type Message struct {
	Channel string
	// Data is {"renders":{...},"removals":[...]}, already within Limits.MaxData.
	Data []byte
	// ID is the message's own idempotency key, for providers that drop repeats
	// (Ably): no other message shares it. It is derived from the source stream
	// sequences and the content, so a retry carries the same ID. Providers put it on
	// the wire in the form they need (Ably: <ID>:0).
	ID string
}

// Limits are what one provider accepts.
type Limits struct {
	MaxData  int // bytes of Data in one message
	MaxBatch int // messages in one request
}

// Error is a failed provider request, with what a retry policy needs to classify it.
type Error struct {
	Provider   string
	Status     int           // HTTP status; 0 when no response came back
	Code       int           // the provider's own error code, when it gives one
	RetryAfter time.Duration // the provider's Retry-After, when it gave one
	// Rejected is set when the message was refused before any request (invalid
	// channel, too large): retrying cannot help.
	Rejected bool
	Err      error
}

func (e *Error) Error() string {
	switch {
	case e.Rejected:
		return fmt.Sprintf("%s rejects the message: %v", e.Provider, e.Err)
	case e.Status != 0:
		return fmt.Sprintf("%s answered HTTP %d: %v", e.Provider, e.Status, e.Err)
	default:
		return fmt.Sprintf("%s request failed: %v", e.Provider, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// PartialError is returned by a provider whose one request publishes to several
// channels and reports each channel's result (Ably's batch publish): Errs[i] is the
// error of msgs[i], nil when that message was accepted.
type PartialError struct {
	Errs []error
}

func (e *PartialError) Error() string {
	failed, first := 0, error(nil)
	for _, err := range e.Errs {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	return fmt.Sprintf("%d of %d messages failed; first: %v", failed, len(e.Errs), first)
}

// Unwrap returns the failed messages' errors, so errors.As finds a *Error among them.
func (e *PartialError) Unwrap() []error {
	var out []error
	for _, err := range e.Errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}
