package event

import (
	"strconv"
	"time"
)

// Decode parses and validates one version 1 event. Renders keep the order of their
// keys in data. A failure is always an *Error. Unknown fields are ignored; a field
// given twice counts as its last value, as in encoding/json.
func Decode(data []byte) (Event, error) {
	s := scanner{b: data}
	var f fields
	if err := f.scan(&s); err != nil {
		return Event{}, err
	}
	// Field errors are reported in a fixed order, whatever the order of the keys.
	for _, err := range []*Error{f.vErr, f.channelErr, f.rendersErr, f.removalsErr, f.revisionErr, f.emittedErr, f.postRevErr} {
		if err != nil {
			return Event{}, err
		}
	}
	return f.ev, nil
}

// fields is what one pass over the object found.
type fields struct {
	ev                                   Event
	hasV, hasChannel                     bool
	hasRenders, hasRemovals              bool
	vErr, channelErr, rendersErr         *Error
	removalsErr, revisionErr, emittedErr *Error
	postRevErr                           *Error
}

func (f *fields) scan(s *scanner) error {
	malformed := func() error { return invalid(ReasonMalformed, "the message is not valid JSON") }
	if s.peek() != '{' {
		if s.skip(0) != nil || !s.end() {
			return malformed()
		}
		return invalid(ReasonMalformed, "the message is not a JSON object")
	}
	s.i++
	if !s.eat('}') {
		for {
			key, err := s.key()
			if err != nil || !s.eat(':') {
				return malformed()
			}
			if err := f.value(s, key); err != nil {
				return malformed()
			}
			if s.eat('}') {
				break
			}
			if !s.eat(',') {
				return malformed()
			}
		}
	}
	if !s.end() {
		return malformed()
	}
	if !f.hasV {
		f.vErr = invalid(ReasonVersion, `"v" is missing; this worker reads version %d`, Version)
	}
	if !f.hasChannel {
		f.channelErr = invalid(ReasonChannel, `"channel" is missing`)
	}
	return nil
}

// value reads the value of key; it returns an error only for a syntax error, and
// records a field's type or range error for Decode to report.
func (f *fields) value(s *scanner, key []byte) error {
	switch string(key) { // no allocation: the compiler compares the bytes
	case "v":
		return f.version(s)
	case "channel":
		return f.channel(s)
	case "renders":
		f.hasRenders = true
		return f.renders(s)
	case "removals":
		f.hasRemovals = true
		return f.removals(s)
	case "revision":
		return f.revision(s)
	case "emitted_at":
		return f.emittedAt(s)
	case "post_revisions":
		return f.postRevisions(s)
	default:
		return s.skip(1)
	}
}

// null reads a null if there is one.
func null(s *scanner) bool {
	return s.peek() == 'n' && s.literal("null")
}

// mismatch skips a value of the wrong type and returns what it was, for the message.
func mismatch(s *scanner) (string, error) {
	s.ws()
	start := s.i
	if err := s.skip(1); err != nil {
		return "", err
	}
	return truncate(string(s.b[start:s.i])), nil
}

// wrongType skips a value of the wrong type and sets *dst to the error describe makes
// of the value's text (as mismatch gives it). It returns only a syntax error.
func wrongType(s *scanner, dst **Error, describe func(text string) *Error) error {
	text, err := mismatch(s)
	if err != nil {
		return err
	}
	*dst = describe(text)
	return nil
}

func (f *fields) version(s *scanner) error {
	f.hasV, f.vErr = true, nil
	if null(s) {
		f.hasV = false
		return nil
	}
	begin := s.i
	if s.peek() == '1' && s.literal("1") && !s.moreNumber() {
		return nil
	}
	s.i = begin
	return wrongType(s, &f.vErr, func(text string) *Error {
		return invalid(ReasonVersion, `"v" is %s; this worker reads version %d`, text, Version)
	})
}

func (f *fields) channel(s *scanner) error {
	f.hasChannel, f.channelErr, f.ev.Channel = true, nil, ""
	switch {
	case null(s):
		f.hasChannel = false
	case s.peek() == '"':
		ch, err := s.str()
		if err != nil {
			return err
		}
		f.ev.Channel = ch
		if err := CheckChannel(ch); err != nil {
			f.channelErr = err.(*Error)
		}
	default:
		return wrongType(s, &f.channelErr, func(text string) *Error {
			return invalid(ReasonChannel, `"channel" must be a string, got %s`, text)
		})
	}
	return nil
}

func (f *fields) revision(s *scanner) error {
	f.ev.Revision, f.revisionErr = 0, nil
	if null(s) {
		return nil
	}
	if c := s.peek(); c != '-' && (c < '0' || c > '9') {
		return wrongType(s, &f.revisionErr, func(text string) *Error {
			return invalid(ReasonRevision, `"revision" must be a whole number of microseconds, got %s`, text)
		})
	}
	num, err := s.number()
	if err != nil {
		return err
	}
	rev, perr := strconv.ParseInt(string(num), 10, 64)
	if perr != nil || rev < 0 {
		f.revisionErr = invalid(ReasonRevision, `"revision" must be a whole number ≥ 0 that fits 64 bits, got %s`, truncate(string(num)))
		return nil
	}
	f.ev.Revision = rev
	return nil
}

func (f *fields) emittedAt(s *scanner) error {
	f.ev.EmittedAt, f.emittedErr = time.Time{}, nil
	if null(s) {
		return nil
	}
	if s.peek() != '"' {
		return wrongType(s, &f.emittedErr, func(text string) *Error {
			return invalid(ReasonEmittedAt, `"emitted_at" must be an RFC 3339 time string, got %s`, text)
		})
	}
	text, err := s.str()
	if err != nil {
		return err
	}
	t, perr := time.Parse(time.RFC3339Nano, text)
	if perr != nil {
		f.emittedErr = invalid(ReasonEmittedAt, `"emitted_at" %q is not an RFC 3339 time`, truncate(text))
		return nil
	}
	f.ev.EmittedAt = t
	return nil
}
