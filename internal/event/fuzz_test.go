package event

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzDecode: Decode never panics, fails only with an *Error, and every event it
// accepts survives Append and Decode unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"channel":"c","renders":{"a":{"show":true,"content":"<p>x</p>"}},"removals":["b"],"revision":3}`,
		`{"v": 1, "channel": "x", "renders": {"p1": {"show": true}}, "removals": []}`,
		`{"v":1,"channel":"x","renders":{`,
		`{"v":2}`, `[]`, `null`, `{"v":1,"channel":"c","renders":{"a":{"show":true,"content":"\ud83c\udf89"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Decode(data)
		if refused(t, err) {
			return
		}
		again, err := Decode(Append(nil, ev))
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		if !ev.EmittedAt.Equal(again.EmittedAt) {
			t.Fatalf("emitted_at changed: %v → %v", ev.EmittedAt, again.EmittedAt)
		}
		ev.EmittedAt = again.EmittedAt
		// Invalid UTF-8 in content is replaced by U+FFFD on the way out.
		if !reflect.DeepEqual(normalize(ev), normalize(again)) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, again)
		}
	})
}

func normalize(ev Event) Event {
	fix := func(s string) string { return string(AppendString(nil, s)) }
	out := ev
	out.Renders = nil
	for _, r := range ev.Renders {
		out.Renders = append(out.Renders, Render{ID: fix(r.ID), Show: r.Show, Content: fix(r.Content)})
	}
	out.Removals = nil
	for _, id := range ev.Removals {
		out.Removals = append(out.Removals, fix(id))
	}
	out.Channel = fix(ev.Channel)
	return out
}

// refused reports whether a decoder refused its input (err is not nil), failing t
// when it did so with anything but an *Error.
func refused(t *testing.T, err error) bool {
	t.Helper()
	if err == nil {
		return false
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	return true
}
