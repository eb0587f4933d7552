package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// referenceDecode is the straightforward decoder built on encoding/json (three passes
// over the input) that Decode replaced. It stays as the oracle of FuzzDecodeMatchesReference.
func referenceDecode(data []byte) (Event, error) {
	if !json.Valid(data) {
		return Event{}, invalid(ReasonMalformed, "not valid JSON")
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Event{}, invalid(ReasonMalformed, "not an object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Event{}, invalid(ReasonMalformed, "not an object")
	}
	var ev Event
	if v, ok := raw["v"]; !ok || isNullRaw(v) {
		return Event{}, invalid(ReasonVersion, "missing")
	} else if string(v) != "1" {
		return Event{}, invalid(ReasonVersion, "not 1")
	}
	c, ok := raw["channel"]
	if !ok || isNullRaw(c) {
		return Event{}, invalid(ReasonChannel, "missing")
	}
	if err := json.Unmarshal(c, &ev.Channel); err != nil {
		return Event{}, invalid(ReasonChannel, "not a string")
	}
	if err := CheckChannel(ev.Channel); err != nil {
		return Event{}, err
	}
	if r := raw["renders"]; !isNullRaw(r) {
		dec := json.NewDecoder(bytes.NewReader(r))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return Event{}, invalid(ReasonRenders, "not an object")
		}
		for dec.More() {
			tok, _ := dec.Token()
			id := tok.(string)
			if id == "" || len(id) > MaxPostIDLen {
				return Event{}, invalid(ReasonRenders, "bad id")
			}
			var body map[string]json.RawMessage
			if err := dec.Decode(&body); err != nil {
				return Event{}, invalid(ReasonRenders, "not an object")
			}
			var show bool
			var content string
			sr, okS := body["show"]
			cr, okC := body["content"]
			if okS && !isNullRaw(sr) && json.Unmarshal(sr, &show) != nil || okC && !isNullRaw(cr) && json.Unmarshal(cr, &content) != nil {
				return Event{}, invalid(ReasonRenders, "wrong types")
			}
			if !okS || isNullRaw(sr) || !okC || isNullRaw(cr) {
				return Event{}, invalid(ReasonRenders, "missing show or content")
			}
			r := Render{ID: id, Show: show, Content: content}
			found := false
			for i := range ev.Renders {
				if ev.Renders[i].ID == id {
					ev.Renders[i], found = r, true
				}
			}
			if !found {
				ev.Renders = append(ev.Renders, r)
			}
		}
	}
	if r := raw["removals"]; !isNullRaw(r) {
		if err := json.Unmarshal(r, &ev.Removals); err != nil || bytes.Contains(r, []byte("null")) && !validStrings(r) {
			return Event{}, invalid(ReasonRemovals, "not strings")
		}
		for _, id := range ev.Removals {
			if id == "" || len(id) > MaxPostIDLen {
				return Event{}, invalid(ReasonRemovals, "bad id")
			}
		}
	}
	if r := raw["revision"]; !isNullRaw(r) {
		rev, err := referenceRevision(r)
		if err != nil {
			return Event{}, err
		}
		ev.Revision = rev
	}
	if r := raw["emitted_at"]; !isNullRaw(r) {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return Event{}, invalid(ReasonEmittedAt, "not a string")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return Event{}, invalid(ReasonEmittedAt, "not a time")
		}
		ev.EmittedAt = t
	}
	if r := raw["post_revisions"]; !isNullRaw(r) {
		var m map[string]json.RawMessage
		if r[0] != '{' || json.Unmarshal(r, &m) != nil {
			return Event{}, invalid(ReasonRevision, "not an object")
		}
		ev.PostRevisions = map[string]int64{}
		for id, v := range m {
			rev, err := referenceRevision(v)
			if err != nil {
				return Event{}, err
			}
			ev.PostRevisions[id] = rev
		}
	}
	return ev, nil
}

func isNullRaw(r json.RawMessage) bool { return len(r) == 0 || string(r) == "null" }

// validStrings reports whether an array holds only strings (no null elements, which
// encoding/json would quietly read as "").
func validStrings(r json.RawMessage) bool {
	var items []json.RawMessage
	if json.Unmarshal(r, &items) != nil {
		return false
	}
	for _, it := range items {
		if len(it) == 0 || it[0] != '"' {
			return false
		}
	}
	return true
}

func reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "not an *Error: " + err.Error()
}

// FuzzDecodeMatchesReference: the one-pass decoder accepts exactly what the
// encoding/json decoder accepts, gives the same events, and rejects with the same
// reasons.
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"channel":"c","renders":{"a":{"show":true,"content":"<p>x</p>"},"b":{"show":false,"content":"\u00e9\ud83c\udf89"}},"removals":["b"],"revision":3,"emitted_at":"2026-11-29T15:00:00.123Z"}`,
		`{"v": 1, "channel": "x", "renders": {"p1": {"show": true}}, "removals": []}`,
		`{"v":1,"channel":"x","renders":{`, `{"v":2}`, `[]`, `null`, ` {"v":1,"channel":"c","x":[1,{"y":null}]} `,
		`{"v":1,"channel":"c","renders":{"a":{"show":true,"content":"\ud800x"},"a":{"show":true,"content":"2"}}}`,
		`{"v":1,"channel":"c","removals":[null]}`, `{"v":1,"channel":"c","post_revisions":{"a":1,"a":"x"}}`,
		`{"v":1,"channel":"c","revision":9,"post_revisions":{"a":3,"b":-1}}`, `{"v":1,"channel":"c","post_revisions":{"a":"x","a":2}}`, `{"v":1,"channel":"c","revision":-0}`, `{"v":1,"channel":"c","revision":1e3}`,
		"{\"v\":1,\"channel\":\"c\",\"renders\":{\"a\":{\"show\":true,\"content\":\"\xff\xfe\"}}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := Decode(data)
		want, werr := referenceDecode(data)
		switch {
		case gerr != nil && werr != nil:
			if reason(gerr) != reason(werr) {
				t.Fatalf("reasons differ for %q: Decode %v, reference %v", data, gerr, werr)
			}
		case gerr != nil || werr != nil:
			t.Fatalf("only one failed for %q: Decode %v, reference %v", data, gerr, werr)
		default:
			if !got.EmittedAt.Equal(want.EmittedAt) {
				t.Fatalf("emitted_at differs for %q", data)
			}
			got.EmittedAt, want.EmittedAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("events differ for %q:\n got %#v\nwant %#v", data, got, want)
			}
		}
	})
}

// referenceRevision reads a revision as the reference decoder does: a JSON number,
// not a string, that is a whole number ≥ 0 and fits 64 bits.
func referenceRevision(r json.RawMessage) (int64, error) {
	var n json.Number
	if r[0] == '"' || json.Unmarshal(r, &n) != nil {
		return 0, invalid(ReasonRevision, "not a number")
	}
	rev, err := n.Int64()
	if err != nil || rev < 0 {
		return 0, invalid(ReasonRevision, "out of range")
	}
	return rev, nil
}
