package event

import (
	"errors"
	"testing"
)

func TestDecodeUpdate(t *testing.T) {
	tests := []struct {
		name, data string
		reason     string // "" when valid
	}{
		{"wagtail live update", `{"renders":{"b":{"show":true,"content":"<p>B</p>"},"a":{"show":false,"content":"<p>A</p>"}},"removals":["c"]}`, ""},
		{"empty update", `{"renders":{},"removals":[]}`, ""},
		{"with a revision", `{"renders":{},"removals":["x"],"revision":12}`, ""},
		{"channel inside is ignored", `{"channel":"other","v":7,"renders":{},"removals":[]}`, ""},
		{"not json", `renders`, ReasonMalformed},
		{"not an object", `"{}"`, ReasonMalformed},
		{"no removals", `{"renders":{}}`, ReasonRemovals},
		{"no renders", `{"removals":[]}`, ReasonRenders},
		{"renders not an object", `{"renders":[],"removals":[]}`, ReasonRenders},
		{"render without content", `{"renders":{"a":{"show":true}},"removals":[]}`, ReasonRenders},
		{"removals not strings", `{"renders":{},"removals":[1]}`, ReasonRemovals},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeUpdate("live-blog", []byte(tt.data))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("DecodeUpdate: %v", err)
				}
				if ev.Channel != "live-blog" {
					t.Errorf("channel %q, want live-blog", ev.Channel)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.reason {
				t.Errorf("DecodeUpdate error %v, want reason %s", err, tt.reason)
			}
		})
	}
	ev, err := DecodeUpdate("c", []byte(`{"renders":{"b":{"show":true,"content":"B"},"a":{"show":false,"content":"A"}},"removals":["c"]}`))
	if err != nil || len(ev.Renders) != 2 || ev.Renders[0].ID != "b" || ev.Renders[1].Show || len(ev.Removals) != 1 {
		t.Errorf("DecodeUpdate = %+v, %v: order or fields lost", ev, err)
	}
	if _, err := DecodeUpdate("bad channel", []byte(`{"renders":{},"removals":[]}`)); err == nil {
		t.Error("a channel with a space was accepted")
	}
}

// FuzzDecodeUpdate: DecodeUpdate never panics, fails only with an *Error, and every
// update it accepts is an event that survives Append and Decode with its channel.
func FuzzDecodeUpdate(f *testing.F) {
	for _, s := range []string{
		`{"renders":{"a":{"show":true,"content":"<p>x</p>"}},"removals":["b"]}`,
		`{"renders":{},"removals":[],"revision":5,"channel":"other"}`,
		`{"renders":{`, `{"removals":[]}`, `[]`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeUpdate("live-blog", data)
		if refused(t, err) {
			return
		}
		again, err := Decode(Append(nil, ev))
		if err != nil || again.Channel != "live-blog" || len(again.Renders) != len(ev.Renders) || len(again.Removals) != len(ev.Removals) {
			t.Fatalf("accepted update does not survive as an event: %+v, %v", again, err)
		}
	})
}
