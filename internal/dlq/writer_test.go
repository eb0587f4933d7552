package dlq

import (
	"bytes"
	"testing"
)

// A letter larger than the server's max payload (an invalid event as large as NATS
// lets through, with dead-letter headers on top) is stored in chunks: Write succeeds,
// and List and Get give the letter back whole, with its headers.
func TestWriterChunksALetterOverTheMaxPayload(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	max := int(f.js.Conn().MaxPayload())
	body := bytes.Repeat([]byte("z"), max-16)
	l := Letter{Token: "huge", Body: body, Reason: "malformed-json", Detail: "not JSON", SourceSeqs: []uint64{77}, SourceSubject: "live.events.0.huge"}
	if err := f.w.Write(ctx, l); err != nil {
		t.Fatalf("Write: %v", err)
	}
	all, err := f.r.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].ChunkCount < 2 || all[0].Incomplete() || !bytes.Equal(all[0].Body, body) {
		t.Fatalf("List: %d letters, want one letter joined from its chunks", len(all))
	}
	e := all[0]
	if e.Reason != l.Reason || e.SourceSubject != l.SourceSubject || len(e.SourceSeqs) != 1 || e.SourceSeqs[0] != 77 {
		t.Errorf("headers read back: %+v", e.Letter)
	}
	got, err := f.r.Get(ctx, e.Seq)
	if err != nil || !bytes.Equal(got.Body, body) || len(got.Chunks) != e.ChunkCount {
		t.Fatalf("Get(%d): %d bytes in %d chunks (%v)", e.Seq, len(got.Body), len(got.Chunks), err)
	}
	// Written again (a retry after a crash): the duplicate window drops every chunk.
	if err := f.w.Write(ctx, l); err != nil {
		t.Fatal(err)
	}
	if again, _ := f.r.List(ctx, Filter{}); len(again) != 1 {
		t.Fatalf("after a repeated write, %d letters", len(again))
	}
}
