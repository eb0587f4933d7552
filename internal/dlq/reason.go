package dlq

import "github.com/liverelay/liverelay/internal/event"

// Reason is why a letter was written: its Live-Dlq-Reason header, the value an operator
// filters on ("worker dlq list --reason R") and the reason label of
// liverelay_dead_letters_total and liverelay_invalid_events_total. Reasons are short,
// stable words: renaming one breaks the filters and alerts built on it.
//
// Reasons lists every reason liverelay writes. The reasons event.Decode gives are
// declared in package event (this package imports it, so it cannot import this one)
// and listed here by its constants; every other reason is declared below.
//
// A new reason is one line in Reasons (and its constant, unless event declares it),
// plus its row in docs/architecture.md's header table and in docs/operations.md's
// section on the reasons; reason_test.go fails until both docs name it.
type Reason string

// Reasons for a message that cannot be handled as an event (package consumer).
const (
	ReasonInvalidSubject Reason = "invalid-subject" // the stored subject is not <prefix>.<partition>.<token>
	ReasonPanic          Reason = "handler-panic"   // handling the message panicked
)

// ReasonMaxDeliveries marks a message JetStream stopped delivering after MaxDeliver
// attempts, for example one that crashed the worker every time (Mover).
const ReasonMaxDeliveries Reason = "max-deliveries"

// Reasons for an update the relay could not publish (package relay).
const (
	ReasonChannelRejected Reason = "channel-rejected"  // the provider does not accept the channel name
	ReasonPostTooLarge    Reason = "post-too-large"    // one post cannot fit a provider message
	ReasonPermanent       Reason = "provider-rejected" // the provider refused the update (4xx)
	ReasonExhausted       Reason = "retries-exhausted" // retryable failures until the policy gave up
)

// ReasonInfo is a reason and what it means, in one line.
type ReasonInfo struct {
	Reason  Reason
	Meaning string
}

// Reasons returns every reason liverelay writes letters with, in a stable order: the
// order in which a message meets them on its way from the event stream to a provider.
func Reasons() []ReasonInfo {
	return []ReasonInfo{
		{ReasonInvalidSubject, "the stored subject is not <prefix>.<partition>.<token>"},
		{event.ReasonMalformed, "the message is not valid JSON, or not a JSON object"},
		{event.ReasonVersion, `"v" is missing or not a version this worker reads`},
		{event.ReasonChannel, `"channel" is missing, empty, too long or has a space or control character`},
		{event.ReasonRenders, `"renders" is not an object of post id to {"show", "content"}`},
		{event.ReasonRemovals, `"removals" is not an array of post ids`},
		{event.ReasonRevision, `"revision" or "post_revisions" is not a whole number ≥ 0 that fits 64 bits`},
		{event.ReasonEmittedAt, `"emitted_at" is not an RFC 3339 time`},
		{event.ReasonSubjectMismatch, "the event's channel belongs on another subject token than it came on"},
		{ReasonPanic, "handling the message panicked; the worker survived"},
		{ReasonMaxDeliveries, "JetStream delivered the message MaxDeliver times without an ack"},
		{ReasonChannelRejected, "the provider does not accept the channel name"},
		{ReasonPostTooLarge, "one post cannot fit a provider message; the rest of the update was delivered"},
		{ReasonPermanent, "the provider refused the update with a permanent error (4xx)"},
		{ReasonExhausted, "retryable failures lasted until the retry policy gave up"},
	}
}

// Known reports whether liverelay writes letters with reason r.
func (r Reason) Known() bool {
	for _, k := range Reasons() {
		if k.Reason == r {
			return true
		}
	}
	return false
}
