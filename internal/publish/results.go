package publish

import (
	"fmt"
)

// results collects the outcome of each message of one Publish call, for the
// providers that send a call's messages in several requests (Ably, PieSocket).
type results struct {
	provider string
	msgs     []Message
	errs     []error
	done     []bool
	failed   map[string]error // channels that failed: their later messages are not sent
	channels int
}

func newResults(provider string, msgs []Message) *results {
	names := map[string]bool{}
	for _, m := range msgs {
		names[m.Channel] = true
	}
	return &results{provider: provider, msgs: msgs, errs: make([]error, len(msgs)), done: make([]bool, len(msgs)),
		failed: map[string]error{}, channels: len(names)}
}

func (r *results) ok(i int) { r.done[i] = true }

// fail records err for message i and for every later message of its channel, which
// must not overtake it. Nothing more is sent to that channel in this call.
func (r *results) fail(i int, err error) {
	ch := r.msgs[i].Channel
	r.failed[ch] = err
	for j := i; j < len(r.msgs); j++ {
		if !r.done[j] && r.msgs[j].Channel == ch {
			r.errs[j], r.done[j] = err, true
		}
	}
}

// failAll records err for every message without an outcome.
func (r *results) failAll(err error) {
	for j := range r.msgs {
		if !r.done[j] {
			r.errs[j], r.done[j] = err, true
		}
	}
}

// notSent records, for every message without an outcome, that it was not sent
// because a request failed as a whole: a retryable error that keeps the wait asked
// for, and none of the request's own classification (its 400 concerns other channels).
func (r *results) notSent(cause *Error) {
	for j, m := range r.msgs {
		if !r.done[j] {
			r.errs[j], r.done[j] = &Error{Provider: r.provider, RetryAfter: cause.RetryAfter,
				Err: fmt.Errorf("message %d for channel %q not sent: an earlier request of the call failed: %v", j+1, m.Channel, cause.Err)}, true
		}
	}
}

// err is nil when every message was accepted, the one error when all failed alike,
// and a *PartialError otherwise. A message given no outcome counts as not sent, never
// as accepted: the relay acks what is accepted.
func (r *results) err() error {
	for j, m := range r.msgs {
		if !r.done[j] {
			r.errs[j], r.done[j] = &Error{Provider: r.provider, Err: fmt.Errorf("message %d for channel %q: no outcome recorded", j+1, m.Channel)}, true
		}
	}
	var first error
	same, anyOK := true, false
	for _, err := range r.errs {
		switch {
		case err == nil:
			anyOK = true
		case first == nil:
			first = err
		case err != first:
			same = false
		}
	}
	switch {
	case first == nil:
		return nil
	case same && !anyOK:
		return first
	}
	return &PartialError{Errs: r.errs}
}
