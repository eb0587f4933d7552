package event

import (
	"fmt"
	"strconv"
	"time"
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
	text, err := mismatch(s)
	if err != nil {
		return err
	}
	f.vErr = invalid(ReasonVersion, `"v" is %s; this worker reads version %d`, text, Version)
	return nil
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
		text, err := mismatch(s)
		if err != nil {
			return err
		}
		f.channelErr = invalid(ReasonChannel, `"channel" must be a string, got %s`, text)
	}
	return nil
}

func (f *fields) renders(s *scanner) error {
	f.ev.Renders, f.rendersErr = nil, nil
	if null(s) {
		return nil
	}
	if s.peek() != '{' {
		if _, err := mismatch(s); err != nil {
			return err
		}
		f.rendersErr = invalid(ReasonRenders, `"renders" must be an object of post id to {"show", "content"}`)
		return nil
	}
	s.i++
	var index map[string]int
	if s.eat('}') {
		return nil
	}
	for {
		id, err := s.str()
		if err != nil || !s.eat(':') {
			return errSyntax
		}
		r, ferr, err := render(s, id)
		if err != nil {
			return err
		}
		switch {
		case f.rendersErr != nil:
		case ferr != nil:
			f.rendersErr, f.ev.Renders = ferr, nil
		default:
			// A repeated key behaves as in the browser's JSON.parse: the last value
			// wins, in the position of the first.
			if index == nil && len(f.ev.Renders) >= 8 {
				index = make(map[string]int, 16)
				for i, r := range f.ev.Renders {
					if _, dup := index[r.ID]; !dup {
						index[r.ID] = i
					}
				}
			}
			if i, dup := position(f.ev.Renders, index, id); dup {
				f.ev.Renders[i] = r
			} else {
				if index != nil {
					index[id] = len(f.ev.Renders)
				}
				f.ev.Renders = append(f.ev.Renders, r)
			}
		}
		if s.eat('}') {
			return nil
		}
		if !s.eat(',') {
			return errSyntax
		}
	}
}

// position finds post id among the renders so far: a scan while they are few, the
// index once they are many.
func position(rs []Render, index map[string]int, id string) (int, bool) {
	if index != nil {
		i, ok := index[id]
		return i, ok
	}
	for i := range rs {
		if rs[i].ID == id {
			return i, true
		}
	}
	return 0, false
}

// render reads one {"show": bool, "content": string}.
func render(s *scanner, id string) (Render, *Error, error) {
	shape := func() *Error {
		return invalid(ReasonRenders, `render of post %q must be {"show": bool, "content": string}`, truncate(id))
	}
	if id == "" || len(id) > MaxPostIDLen {
		if err := s.skip(1); err != nil {
			return Render{}, nil, err
		}
		return Render{}, invalid(ReasonRenders, `"renders" has a post id of %d bytes; 1 to %d are allowed`, len(id), MaxPostIDLen), nil
	}
	if null(s) {
		return Render{}, invalid(ReasonRenders, `render of post %q needs both "show" (bool) and "content" (string)`, truncate(id)), nil
	}
	if s.peek() != '{' {
		if err := s.skip(1); err != nil {
			return Render{}, nil, err
		}
		return Render{}, shape(), nil
	}
	s.i++
	r := Render{ID: id}
	var hasShow, hasContent bool
	var showErr, contentErr *Error // per key, so that a repeated key's last value counts
	if !s.eat('}') {
		for {
			key, err := s.key()
			if err != nil || !s.eat(':') {
				return Render{}, nil, errSyntax
			}
			switch string(key) {
			case "show":
				showErr = nil
				switch {
				case null(s):
					hasShow = false
				case s.peek() == 't' && s.literal("true"):
					r.Show, hasShow = true, true
				case s.peek() == 'f' && s.literal("false"):
					r.Show, hasShow = false, true
				default:
					if err := s.skip(1); err != nil {
						return Render{}, nil, err
					}
					showErr, hasShow = shape(), false
				}
			case "content":
				contentErr = nil
				switch {
				case null(s):
					hasContent = false
				case s.peek() == '"':
					if r.Content, err = s.str(); err != nil {
						return Render{}, nil, err
					}
					hasContent = true
				default:
					if err := s.skip(1); err != nil {
						return Render{}, nil, err
					}
					contentErr, hasContent = shape(), false
				}
			default:
				if err := s.skip(1); err != nil {
					return Render{}, nil, err
				}
			}
			if s.eat('}') {
				break
			}
			if !s.eat(',') {
				return Render{}, nil, errSyntax
			}
		}
	}
	if showErr != nil {
		return Render{}, showErr, nil
	}
	if contentErr != nil {
		return Render{}, contentErr, nil
	}
	if !hasShow || !hasContent {
		return Render{}, invalid(ReasonRenders, `render of post %q needs both "show" (bool) and "content" (string)`, truncate(id)), nil
	}
	return r, nil, nil
}

func (f *fields) removals(s *scanner) error {
	f.ev.Removals, f.removalsErr = nil, nil
	if null(s) {
		return nil
	}
	begin := s.i
	// notArray re-reads the whole value from its start, to validate it and quote it.
	notArray := func() error {
		s.i = begin
		text, err := mismatch(s)
		if err != nil {
			return err
		}
		f.removalsErr, f.ev.Removals = invalid(ReasonRemovals, `"removals" must be an array of post ids, got %s`, text), nil
		return nil
	}
	if s.peek() != '[' {
		return notArray()
	}
	s.i++
	ids := []string{}
	if !s.eat(']') {
		for {
			if s.peek() != '"' {
				return notArray()
			}
			id, err := s.str()
			if err != nil {
				return err
			}
			if (id == "" || len(id) > MaxPostIDLen) && f.removalsErr == nil {
				f.removalsErr = invalid(ReasonRemovals, `"removals" has a post id of %d bytes; 1 to %d are allowed`, len(id), MaxPostIDLen)
			}
			ids = append(ids, id)
			if s.eat(']') {
				break
			}
			if !s.eat(',') {
				return errSyntax
			}
		}
	}
	if f.removalsErr == nil {
		f.ev.Removals = ids
	}
	return nil
}

func (f *fields) revision(s *scanner) error {
	f.ev.Revision, f.revisionErr = 0, nil
	if null(s) {
		return nil
	}
	if c := s.peek(); c != '-' && (c < '0' || c > '9') {
		text, err := mismatch(s)
		if err != nil {
			return err
		}
		f.revisionErr = invalid(ReasonRevision, `"revision" must be a whole number of microseconds, got %s`, text)
		return nil
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

func (f *fields) postRevisions(s *scanner) error {
	f.ev.PostRevisions, f.postRevErr = nil, nil
	if null(s) {
		return nil
	}
	if s.peek() != '{' {
		if _, err := mismatch(s); err != nil {
			return err
		}
		f.postRevErr = invalid(ReasonRevision, `"post_revisions" must be an object of post id to revision`)
		return nil
	}
	s.i++
	revs := map[string]int64{}
	var bad map[string]bool // per id, so that a repeated id's last value counts
	if !s.eat('}') {
		for {
			id, err := s.str()
			if err != nil || !s.eat(':') {
				return errSyntax
			}
			ok := false
			if c := s.peek(); c == '-' || '0' <= c && c <= '9' {
				num, err := s.number()
				if err != nil {
					return err
				}
				if rev, perr := strconv.ParseInt(string(num), 10, 64); perr == nil && rev >= 0 {
					revs[id], ok = rev, true
				}
			} else if _, err := mismatch(s); err != nil {
				return err
			}
			if ok {
				delete(bad, id)
			} else {
				if bad == nil {
					bad = map[string]bool{}
				}
				bad[id] = true
			}
			if s.eat('}') {
				break
			}
			if !s.eat(',') {
				return errSyntax
			}
		}
	}
	if len(bad) > 0 {
		f.postRevErr = invalid(ReasonRevision, `"post_revisions" must map post ids to whole numbers ≥ 0 that fit 64 bits`)
		return nil
	}
	f.ev.PostRevisions = revs
	return nil
}

func (f *fields) emittedAt(s *scanner) error {
	f.ev.EmittedAt, f.emittedErr = time.Time{}, nil
	if null(s) {
		return nil
	}
	if s.peek() != '"' {
		text, err := mismatch(s)
		if err != nil {
			return err
		}
		f.emittedErr = invalid(ReasonEmittedAt, `"emitted_at" must be an RFC 3339 time string, got %s`, text)
		return nil
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
