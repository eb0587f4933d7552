package event

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "examples", name))
	if err != nil {
		t.Skipf("shared examples not beside the checkout: %v", err)
	}
	return b
}

func TestDecodeExamplesGiveTheSameEvent(t *testing.T) {
	python, err := Decode(readExample(t, "event-python-style.json"))
	if err != nil {
		t.Fatalf("python-style: %v", err)
	}
	compact, err := Decode(readExample(t, "event-compact-utf8.json"))
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	if !reflect.DeepEqual(python, compact) {
		t.Fatalf("python-style and compact differ:\n%+v\n%+v", python, compact)
	}
	want := []string{"6a1f0c2e-8d3b-4c57-9a0e-1b2c3d4e5f60", "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"}
	var got []string
	for _, r := range python.Renders {
		got = append(got, r.ID)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("render order = %v, want %v", got, want)
	}
	if !strings.Contains(python.Renders[0].Content, "café 🎉") || python.Renders[1].Show {
		t.Fatalf("renders decoded wrongly: %+v", python.Renders)
	}
	if python.Revision != 1764428400123456 || python.EmittedAt.IsZero() || python.Channel != "live-blog-2026" {
		t.Fatalf("metadata decoded wrongly: %+v", python)
	}
}

func TestDecodeRejectsBadExamples(t *testing.T) {
	tests := []struct {
		file   string
		reason string
	}{
		{"bad-empty-channel.json", ReasonChannel},
		{"bad-not-json.txt", ReasonMalformed},
		{"bad-removals-string.json", ReasonRemovals},
		{"bad-render-no-content.json", ReasonRenders},
		{"bad-renders-array.json", ReasonRenders},
		{"bad-unknown-version.json", ReasonVersion},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Decode(readExample(t, tt.file))
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.reason {
				t.Fatalf("Decode error = %v, want reason %s", err, tt.reason)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	long := strings.Repeat("x", MaxPostIDLen+1)
	tests := []struct {
		name   string
		in     string
		reason string // "" when valid
		check  func(t *testing.T, ev Event)
	}{
		{name: "minimal", in: `{"v":1,"channel":"c"}`, check: func(t *testing.T, ev Event) {
			if ev.Channel != "c" || ev.Renders != nil || ev.Removals != nil {
				t.Fatalf("got %+v", ev)
			}
		}},
		{name: "order kept, not sorted", in: `{"v":1,"channel":"c","renders":{"z":{"show":true,"content":"1"},"a":{"show":true,"content":"2"},"m":{"show":false,"content":"3"}}}`,
			check: func(t *testing.T, ev Event) {
				if ids := ids(ev.Renders); ids != "z,a,m" {
					t.Fatalf("order %s", ids)
				}
			}},
		{name: "repeated key: last value, first position", in: `{"v":1,"channel":"c","renders":{"a":{"show":true,"content":"1"},"b":{"show":true,"content":"2"},"a":{"show":true,"content":"3"}}}`,
			check: func(t *testing.T, ev Event) {
				if ids(ev.Renders) != "a,b" || ev.Renders[0].Content != "3" {
					t.Fatalf("got %+v", ev.Renders)
				}
			}},
		{name: "unknown fields ignored", in: `{"v":1,"channel":"c","extra":{"x":[1,2]},"removals":["p"]}`},
		{name: "v as 1.0 is not version 1", in: `{"v":1.0,"channel":"c"}`, reason: ReasonVersion},
		{name: "v missing", in: `{"channel":"c"}`, reason: ReasonVersion},
		{name: "v string", in: `{"v":"1","channel":"c"}`, reason: ReasonVersion},
		{name: "top-level array", in: `[1,2]`, reason: ReasonMalformed},
		{name: "empty input", in: ``, reason: ReasonMalformed},
		{name: "trailing garbage", in: `{"v":1,"channel":"c"} x`, reason: ReasonMalformed},
		{name: "channel number", in: `{"v":1,"channel":5}`, reason: ReasonChannel},
		{name: "channel missing", in: `{"v":1}`, reason: ReasonChannel},
		{name: "channel with space", in: `{"v":1,"channel":"a b"}`, reason: ReasonChannel},
		{name: "channel too long", in: `{"v":1,"channel":"` + strings.Repeat("c", MaxChannelLen+1) + `"}`, reason: ReasonChannel},
		{name: "render show string", in: `{"v":1,"channel":"c","renders":{"p":{"show":"yes","content":"x"}}}`, reason: ReasonRenders},
		{name: "render not object", in: `{"v":1,"channel":"c","renders":{"p":"x"}}`, reason: ReasonRenders},
		{name: "render empty id", in: `{"v":1,"channel":"c","renders":{"":{"show":true,"content":"x"}}}`, reason: ReasonRenders},
		{name: "render id too long", in: `{"v":1,"channel":"c","renders":{"` + long + `":{"show":true,"content":"x"}}}`, reason: ReasonRenders},
		{name: "removal number", in: `{"v":1,"channel":"c","removals":[1]}`, reason: ReasonRemovals},
		{name: "removal empty", in: `{"v":1,"channel":"c","removals":[""]}`, reason: ReasonRemovals},
		{name: "revision negative", in: `{"v":1,"channel":"c","revision":-1}`, reason: ReasonRevision},
		{name: "revision fraction", in: `{"v":1,"channel":"c","revision":1.5}`, reason: ReasonRevision},
		{name: "revision string", in: `{"v":1,"channel":"c","revision":"1"}`, reason: ReasonRevision},
		{name: "emitted_at bad", in: `{"v":1,"channel":"c","emitted_at":"yesterday"}`, reason: ReasonEmittedAt},
		{name: "nulls are absent", in: `{"v":1,"channel":"c","renders":null,"removals":null,"revision":null,"emitted_at":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Decode([]byte(tt.in))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if tt.check != nil {
					tt.check(t, ev)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.reason {
				t.Fatalf("error = %v, want reason %s", err, tt.reason)
			}
			if e.Detail == "" {
				t.Fatalf("error %v has no detail", err)
			}
		})
	}
}

func ids(rs []Render) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.ID)
	}
	return strings.Join(s, ",")
}

func TestAppendRoundTrip(t *testing.T) {
	ev := Event{
		Channel:   "news.uk/live",
		Renders:   []Render{{ID: "b", Show: true, Content: "<p>a & b \"q\" \\ \n\t\u2028 ☕</p>"}, {ID: "a", Show: false, Content: ""}},
		Removals:  []string{"x", "y"},
		Revision:  42,
		EmittedAt: time.Date(2026, 11, 29, 15, 0, 0, 123456000, time.UTC),
	}
	b := Append(nil, ev)
	if !strings.Contains(string(b), "<p>a & b") {
		t.Fatalf("HTML was escaped: %s", b)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if !reflect.DeepEqual(got, ev) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, ev)
	}
}

func TestStringSizeMatchesAppend(t *testing.T) {
	for _, s := range []string{"", "plain", "<&>", "\"\\\n\r\t\x01\x1f", "\u2028\u2029", "caf\xc3\xa9 \xff bad", "🎉"} {
		if got, want := StringSize(s), len(AppendString(nil, s)); got != want {
			t.Errorf("StringSize(%q) = %d, AppendString wrote %d", s, got, want)
		}
		for _, show := range []bool{true, false} {
			r := Render{ID: s + "id", Show: show, Content: s}
			if got, want := RenderSize(r), len(AppendRender(nil, r)); got != want {
				t.Errorf("RenderSize(%+v) = %d, AppendRender wrote %d", r, got, want)
			}
		}
	}
}
