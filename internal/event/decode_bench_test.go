package event

import (
	"strings"
	"testing"
	"time"
)

func benchEvent() []byte {
	post := `<div class="live-post"><p>` + strings.Repeat("The match goes on & the crowd <cheers>. ", 25) + `</p></div>`
	ev := Event{Channel: "live-blog-2026", Revision: 1764428400123456, EmittedAt: time.Now(),
		Renders: []Render{{ID: "6a1f0c2e-8d3b-4c57-9a0e-1b2c3d4e5f60", Show: true, Content: post}}, Removals: []string{}}
	return Append(nil, ev)
}

// BenchmarkDecode is the one-pass decoder on a 1 KB post.
func BenchmarkDecode(b *testing.B) { benchDecode(b, Decode) }

// BenchmarkDecodeReference is the encoding/json decoder it replaced, for comparison.
func BenchmarkDecodeReference(b *testing.B) { benchDecode(b, referenceDecode) }

// benchDecode measures decode on benchEvent.
func benchDecode(b *testing.B, decode func([]byte) (Event, error)) {
	data := benchEvent()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	ev, _ := Decode(benchEvent())
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = Append(buf[:0], ev)
	}
}
