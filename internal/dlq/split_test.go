package dlq

import (
	"fmt"
	"strings"
	"testing"

	"github.com/liverelay/liverelay/internal/event"
)

// A merged update too big for one letter is split by posts: renders in order, then
// removals; each part fits, is a valid event, and carries the revision of each of its
// own posts; a post too big for any part gets one of its own.
func TestSplitLetterByPosts(t *testing.T) {
	whole := event.Event{Channel: "c", Revision: 900, PostRevisions: map[string]int64{}}
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("p%02d", i)
		whole.Renders = append(whole.Renders, event.Render{ID: id, Show: true, Content: strings.Repeat("x", 300)})
		whole.PostRevisions[id] = int64(100 + i)
	}
	whole.Renders[7].Content = strings.Repeat("y", 5000) // too big for any part
	whole.Removals = []string{"gone1", "gone2"}
	whole.PostRevisions["gone1"] = 0 // never fenced

	const room = 2000
	l := Letter{Token: "c", Channel: "c", Body: event.Append(nil, whole), Reason: ReasonExhausted, SourceSeqs: []uint64{4, 9}, Splittable: true}
	parts := splitLetter(l, room)
	if len(parts) < 3 {
		t.Fatalf("%d parts", len(parts))
	}
	var renders []string
	var removals []string
	for i, p := range parts {
		if want := fmt.Sprintf("%d/%d", i+1, len(parts)); p.Part != want || p.Splittable {
			t.Errorf("part %d: Part %q (splittable %v), want %q", i+1, p.Part, p.Splittable, want)
		}
		if p.Reason != l.Reason || fmt.Sprint(p.SourceSeqs) != fmt.Sprint(l.SourceSeqs) {
			t.Errorf("part %d lost the letter's headers: %+v", i+1, p)
		}
		ev, err := event.Decode(p.Body)
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		big := len(ev.Renders) == 1 && ev.Renders[0].ID == "p07"
		if len(p.Body) > room && !big {
			t.Errorf("part %d: %d bytes, room %d", i+1, len(p.Body), room)
		}
		for _, r := range ev.Renders {
			renders = append(renders, r.ID)
			if got, want := ev.RevisionOf(r.ID), whole.RevisionOf(r.ID); got != want {
				t.Errorf("part %d: post %s at revision %d, want %d", i+1, r.ID, got, want)
			}
		}
		for _, id := range ev.Removals {
			removals = append(removals, id)
			if got, want := ev.RevisionOf(id), whole.RevisionOf(id); got != want {
				t.Errorf("part %d: removal %s at revision %d, want %d", i+1, id, got, want)
			}
		}
	}
	var want []string
	for _, r := range whole.Renders {
		want = append(want, r.ID)
	}
	if fmt.Sprint(renders) != fmt.Sprint(want) || fmt.Sprint(removals) != fmt.Sprint(whole.Removals) {
		t.Errorf("parts hold renders %v and removals %v, want %v and %v", renders, removals, want, whole.Removals)
	}
}

// Chunks of letters read back in stream order are joined, even with other letters
// between them; a letter missing chunks is returned as it is, marked incomplete.
func TestJoinerJoinsChunks(t *testing.T) {
	chunk := func(seq uint64, subject, id string, i, n int, body string) Entry {
		e := Entry{Seq: seq, Subject: subject, Header: map[string][]string{}}
		e.Header.Set(HeaderChunk, fmt.Sprintf("%d/%d", i, n))
		e.Header.Set(HeaderLetter, id)
		e.Body = []byte(body)
		e.ChunkCount, e.Chunks = n, []uint64{seq}
		return e
	}
	j := newJoiner()
	var got []string
	for _, e := range []Entry{
		chunk(1, "live.dlq.a", "L1", 1, 3, "ab"),
		{Seq: 2, Subject: "live.dlq.b", Header: map[string][]string{}, Letter: Letter{Body: []byte("whole")}},
		chunk(3, "live.dlq.a", "L1", 2, 3, "cd"),
		chunk(4, "live.dlq.a", "L2", 1, 2, "xy"),
		chunk(5, "live.dlq.a", "L1", 3, 3, "e"),
	} {
		if w, ok := j.add(e); ok {
			got = append(got, fmt.Sprintf("%d:%s:%v", w.Seq, w.Body, w.Incomplete()))
		}
	}
	for _, w := range j.rest() {
		got = append(got, fmt.Sprintf("%d:%s:%v", w.Seq, w.Body, w.Incomplete()))
	}
	if want := "[2:whole:false 1:abcde:false 4:xy:true]"; fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
}
