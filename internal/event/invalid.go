// What makes an event invalid: the bounds of its ids, the reasons a dead letter
// names, and the Error that carries one.

package event

import (
	"fmt"
	"unicode/utf8"
)

// MaxChannelLen bounds a channel id in bytes. Providers have tighter rules of their own
// (Pusher 164, PieSocket 30); those are checked where the update is published.
const MaxChannelLen = 200

// MaxPostIDLen bounds a post id in bytes. Wagtail Live's ids are 36-byte UUIDs; the
// bound keeps every removal small enough to fit any provider message.
const MaxPostIDLen = 200

// Reasons an event is rejected. They travel in the dead-letter header, so they are
// short, stable words an operator can filter on. dlq.Reasons lists them with every
// other dead-letter reason: a new one is added there too (its test fails until it is).
const (
	ReasonMalformed       = "malformed-json"
	ReasonVersion         = "unknown-version"
	ReasonChannel         = "invalid-channel"
	ReasonRenders         = "invalid-renders"
	ReasonRemovals        = "invalid-removals"
	ReasonRevision        = "invalid-revision"
	ReasonEmittedAt       = "invalid-emitted-at"
	ReasonSubjectMismatch = "subject-mismatch"
)

// Error is why a message is not a valid event.
type Error struct {
	Reason string // one of the Reason constants
	Detail string
}

func (e *Error) Error() string { return e.Reason + ": " + e.Detail }

func invalid(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// CheckChannel reports whether ch can be a channel id: non-empty, at most
// MaxChannelLen bytes of valid UTF-8 with no control characters or spaces.
func CheckChannel(ch string) error {
	switch {
	case ch == "":
		return invalid(ReasonChannel, `"channel" is empty`)
	case len(ch) > MaxChannelLen:
		return invalid(ReasonChannel, `"channel" is %d bytes long; at most %d are allowed`, len(ch), MaxChannelLen)
	case !utf8.ValidString(ch):
		return invalid(ReasonChannel, `"channel" is not valid UTF-8`)
	}
	for _, r := range ch {
		if r <= ' ' || r == 0x7f {
			return invalid(ReasonChannel, `"channel" %q contains a space or control character`, ch)
		}
	}
	return nil
}

func truncate(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
