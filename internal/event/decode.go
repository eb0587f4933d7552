package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// short, stable words an operator can filter on.
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
// keys in data. A failure is always an *Error.
func Decode(data []byte) (Event, error) {
	var raw struct {
		V         json.RawMessage `json:"v"`
		Channel   json.RawMessage `json:"channel"`
		Renders   json.RawMessage `json:"renders"`
		Removals  json.RawMessage `json:"removals"`
		Revision  json.RawMessage `json:"revision"`
		EmittedAt json.RawMessage `json:"emitted_at"`
	}
	if !json.Valid(data) {
		return Event{}, invalid(ReasonMalformed, "the message is not valid JSON")
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Event{}, invalid(ReasonMalformed, "the message is not a JSON object")
	}
	var ev Event
	var err error
	if err = decodeVersion(raw.V); err != nil {
		return Event{}, err
	}
	if ev.Channel, err = decodeChannel(raw.Channel); err != nil {
		return Event{}, err
	}
	if ev.Renders, err = decodeRenders(raw.Renders); err != nil {
		return Event{}, err
	}
	if ev.Removals, err = decodeRemovals(raw.Removals); err != nil {
		return Event{}, err
	}
	if ev.Revision, err = decodeRevision(raw.Revision); err != nil {
		return Event{}, err
	}
	if ev.EmittedAt, err = decodeEmittedAt(raw.EmittedAt); err != nil {
		return Event{}, err
	}
	return ev, nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

func decodeVersion(raw json.RawMessage) error {
	if isNull(raw) {
		return invalid(ReasonVersion, `"v" is missing; this worker reads version %d`, Version)
	}
	if string(raw) != "1" {
		return invalid(ReasonVersion, `"v" is %s; this worker reads version %d`, truncate(string(raw)), Version)
	}
	return nil
}

func decodeChannel(raw json.RawMessage) (string, error) {
	var ch string
	if isNull(raw) {
		return "", invalid(ReasonChannel, `"channel" is missing`)
	}
	if err := json.Unmarshal(raw, &ch); err != nil {
		return "", invalid(ReasonChannel, `"channel" must be a string, got %s`, truncate(string(raw)))
	}
	return ch, CheckChannel(ch)
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

func decodeRenders(raw json.RawMessage) ([]Render, error) {
	if isNull(raw) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, invalid(ReasonRenders, `"renders" must be an object of post id to {"show", "content"}`)
	}
	var renders []Render
	index := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, invalid(ReasonRenders, `"renders": %v`, err)
		}
		id := tok.(string) // object keys are always strings once json.Valid passed
		if id == "" || len(id) > MaxPostIDLen {
			return nil, invalid(ReasonRenders, `"renders" has a post id of %d bytes; 1 to %d are allowed`, len(id), MaxPostIDLen)
		}
		var body struct {
			Show    *bool   `json:"show"`
			Content *string `json:"content"`
		}
		if err := dec.Decode(&body); err != nil {
			return nil, invalid(ReasonRenders, `render of post %q must be {"show": bool, "content": string}`, id)
		}
		if body.Show == nil || body.Content == nil {
			return nil, invalid(ReasonRenders, `render of post %q needs both "show" (bool) and "content" (string)`, id)
		}
		r := Render{ID: id, Show: *body.Show, Content: *body.Content}
		// A repeated key behaves as in the browser's JSON.parse: the last value
		// wins, in the position of the first.
		if i, ok := index[id]; ok {
			renders[i] = r
			continue
		}
		index[id] = len(renders)
		renders = append(renders, r)
	}
	if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) {
		return nil, invalid(ReasonRenders, `"renders": %v`, err)
	}
	return renders, nil
}

func decodeRemovals(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, invalid(ReasonRemovals, `"removals" must be an array of post ids, got %s`, truncate(string(raw)))
	}
	for _, id := range ids {
		if id == "" || len(id) > MaxPostIDLen {
			return nil, invalid(ReasonRemovals, `"removals" has a post id of %d bytes; 1 to %d are allowed`, len(id), MaxPostIDLen)
		}
	}
	return ids, nil
}

func decodeRevision(raw json.RawMessage) (int64, error) {
	if isNull(raw) {
		return 0, nil
	}
	if raw[0] == '"' {
		return 0, invalid(ReasonRevision, `"revision" must be a whole number of microseconds, got %s`, truncate(string(raw)))
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, invalid(ReasonRevision, `"revision" must be a whole number of microseconds, got %s`, truncate(string(raw)))
	}
	rev, err := n.Int64()
	if err != nil || rev < 0 {
		return 0, invalid(ReasonRevision, `"revision" must be a whole number ≥ 0 that fits 64 bits, got %s`, truncate(string(raw)))
	}
	return rev, nil
}

func decodeEmittedAt(raw json.RawMessage) (time.Time, error) {
	if isNull(raw) {
		return time.Time{}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, invalid(ReasonEmittedAt, `"emitted_at" must be an RFC 3339 time string, got %s`, truncate(string(raw)))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid(ReasonEmittedAt, `"emitted_at" %q is not an RFC 3339 time`, truncate(s))
	}
	return t, nil
}

func truncate(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
