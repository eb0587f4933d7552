package merge

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/liverelay/liverelay/internal/browsertest"
	"github.com/liverelay/liverelay/internal/event"
)

func r(id, content string) event.Render { return event.Render{ID: id, Show: true, Content: content} }

func ev(renders []event.Render, removals ...string) event.Event {
	return event.Event{Channel: "c", Renders: renders, Removals: removals}
}

func TestMergeRules(t *testing.T) {
	tests := []struct {
		name   string
		events []event.Event
		want   string
	}{
		{"renders keep their order", []event.Event{ev([]event.Render{r("z", "1"), r("a", "2")}), ev([]event.Render{r("m", "3")})},
			`{"renders":{"z":{"show":true,"content":"1"},"a":{"show":true,"content":"2"},"m":{"show":true,"content":"3"}},"removals":[]}`},
		{"edit after add keeps the first position", []event.Event{ev([]event.Render{r("a", "1")}), ev([]event.Render{r("b", "1")}), ev([]event.Render{r("a", "2")})},
			`{"renders":{"a":{"show":true,"content":"2"},"b":{"show":true,"content":"1"}},"removals":[]}`},
		{"remove after edit drops the render", []event.Event{ev([]event.Render{r("a", "1")}), ev([]event.Render{r("a", "2")}), ev(nil, "a")},
			`{"renders":{},"removals":["a"]}`},
		{"re-render after removal appears anew, at the end", []event.Event{ev([]event.Render{r("a", "1"), r("b", "1")}), ev(nil, "a"), ev([]event.Render{r("a", "2")})},
			`{"renders":{"b":{"show":true,"content":"1"},"a":{"show":true,"content":"2"}},"removals":[]}`},
		{"removal of an unseen post is kept once", []event.Event{ev(nil, "x"), ev(nil, "x")},
			`{"renders":{},"removals":["x"]}`},
		{"html is not escaped", []event.Event{ev([]event.Render{r("a", `<p class="x">a & b</p>`)})},
			`{"renders":{"a":{"show":true,"content":"<p class=\"x\">a & b</p>"}},"removals":[]}`},
		{"empty events give an empty update", []event.Event{ev(nil), ev(nil)},
			`{"renders":{},"removals":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := New("c")
			for _, e := range tt.events {
				u.Add(e)
			}
			got := string(u.AppendJSON(nil))
			if got != tt.want {
				t.Fatalf("merged\n got %s\nwant %s", got, tt.want)
			}
			if u.Size() != len(got) {
				t.Fatalf("Size() = %d, encoded %d bytes", u.Size(), len(got))
			}
			if u.Events() != len(tt.events) {
				t.Fatalf("Events() = %d, want %d", u.Events(), len(tt.events))
			}
		})
	}
}

func TestMergeIgnoresOlderRevisions(t *testing.T) {
	u := New("c")
	newer := ev([]event.Render{r("a", "new")})
	newer.Revision = 20
	older := ev([]event.Render{r("a", "old"), r("b", "b")}, "c")
	older.Revision = 10
	u.Add(newer)
	if stale := u.Add(older); stale != 1 {
		t.Fatalf("stale = %d, want 1 (only the render of a)", stale)
	}
	want := `{"renders":{"a":{"show":true,"content":"new"},"b":{"show":true,"content":"b"}},"removals":["c"]}`
	if got := string(u.AppendJSON(nil)); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if u.Revision("a") != 20 || u.Revision("b") != 10 || u.MaxRevision() != 20 {
		t.Fatalf("revisions a=%d b=%d max=%d", u.Revision("a"), u.Revision("b"), u.MaxRevision())
	}
}

// blog generates the events of one live blog: new posts, edits, bursts of edits and
// removals. As in Wagtail Live, a removed post's id never comes back.
type blog struct {
	rng   *rand.Rand
	live  []string
	next  int
	clock int64
}

func (b *blog) event() event.Event {
	b.clock++
	e := event.Event{Channel: "c", Revision: b.clock}
	n := 1 + b.rng.IntN(3)
	for i := 0; i < n; i++ {
		switch k := b.rng.IntN(10); {
		case k < 4 || len(b.live) == 0:
			id := fmt.Sprintf("p%d", b.next)
			b.next++
			b.live = append(b.live, id)
			e.Renders = append(e.Renders, event.Render{ID: id, Show: b.rng.IntN(5) > 0, Content: fmt.Sprintf("<p>%s v%d</p>", id, b.clock)})
		case k < 8:
			id := b.live[b.rng.IntN(len(b.live))]
			if hasRender(e, id) || hasRemoval(e, id) {
				continue
			}
			e.Renders = append(e.Renders, event.Render{ID: id, Show: true, Content: fmt.Sprintf("<p>%s v%d</p>", id, b.clock)})
		default:
			i := b.rng.IntN(len(b.live))
			id := b.live[i]
			if hasRender(e, id) {
				continue
			}
			b.live = append(b.live[:i], b.live[i+1:]...)
			e.Removals = append(e.Removals, id)
		}
	}
	return e
}

func hasRender(e event.Event, id string) bool {
	for _, r := range e.Renders {
		if r.ID == id {
			return true
		}
	}
	return false
}

func hasRemoval(e event.Event, id string) bool {
	for _, r := range e.Removals {
		if r == id {
			return true
		}
	}
	return false
}

// TestMergedUpdatesLeaveThePageAsTheEventsDo: for random live blogs cut into random
// windows, a page given the merged (and split) updates equals a page given every event.
func TestMergedUpdatesLeaveThePageAsTheEventsDo(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		b := &blog{rng: rng}
		var want, got browsertest.Page
		u := New("c")
		max := 200 + rng.IntN(400)
		for i := 0; i < 100; i++ {
			e := b.event()
			if err := want.Apply(Append(e)); err != nil {
				t.Fatal(err)
			}
			u.Add(e)
			if rng.IntN(5) == 0 || i == 99 {
				msgs, tooBig := u.Split(max)
				if len(tooBig) > 0 {
					t.Fatalf("seed %d: small posts reported too big: %v", seed, tooBig)
				}
				for _, m := range msgs {
					if len(m) > max {
						t.Fatalf("seed %d: message of %d bytes over the limit %d", seed, len(m), max)
					}
					if err := got.Apply(m); err != nil {
						t.Fatal(err)
					}
				}
				u = New("c")
			}
		}
		if !got.Equal(&want) {
			t.Fatalf("seed %d: page differs\n got %v\nwant %v", seed, got.Posts, want.Posts)
		}
	}
}

// Append encodes one event's operations as an update, for the per-event page.
func Append(e event.Event) []byte { return appendData(nil, e.Renders, e.Removals) }

func TestMergeOfUpdatesEqualsMergeOfEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := &blog{rng: rng}
	all, first, second := New("c"), New("c"), New("c")
	for i := 0; i < 60; i++ {
		e := b.event()
		all.Add(e)
		if i < 30 {
			first.Add(e)
		} else {
			second.Add(e)
		}
	}
	first.Merge(second)
	if got, want := string(first.AppendJSON(nil)), string(all.AppendJSON(nil)); got != want {
		t.Fatalf("merge of updates\n got %s\nwant %s", got, want)
	}
	if first.Events() != 60 {
		t.Fatalf("Events() = %d, want 60", first.Events())
	}
}

func TestSplit(t *testing.T) {
	big := strings.Repeat("x", 300)
	u := New("c")
	u.Add(ev([]event.Render{r("a", "1"), r("huge", big), r("b", "2")}, "gone1", "gone2"))
	msgs, tooBig := u.Split(120)
	if len(tooBig) != 1 || tooBig[0].ID != "huge" {
		t.Fatalf("tooBig = %v, want the huge post", tooBig)
	}
	var page browsertest.Page
	page.Posts = []browsertest.Post{{ID: "gone1"}, {ID: "gone2"}}
	for _, m := range msgs {
		if len(m) > 120 {
			t.Fatalf("message over the limit: %s", m)
		}
		if err := page.Apply(m); err != nil {
			t.Fatal(err)
		}
	}
	want := browsertest.Page{Posts: []browsertest.Post{{ID: "b", Show: true, Content: "2"}, {ID: "a", Show: true, Content: "1"}}}
	if !page.Equal(&want) {
		t.Fatalf("page %+v, want %+v", page.Posts, want.Posts)
	}
	one, _ := u.Split(1 << 20)
	if len(one) != 1 || !strings.Contains(string(one[0]), "huge") {
		t.Fatalf("an update that fits must be one message: %q", one)
	}
}

func TestDropAndPosts(t *testing.T) {
	u := New("c")
	u.Add(ev([]event.Render{r("a", "1"), r("b", "2")}, "x", "y"))
	if got := strings.Join(u.Posts(), ","); got != "a,b,x,y" {
		t.Fatalf("Posts() = %s", got)
	}
	u.Drop("a")
	u.Drop("y")
	u.Drop("never")
	want := `{"renders":{"b":{"show":true,"content":"2"}},"removals":["x"]}`
	if got := string(u.AppendJSON(nil)); got != want || u.Size() != len(want) {
		t.Fatalf("after Drop: %s (Size %d), want %s", got, u.Size(), want)
	}
	u.Add(ev([]event.Render{r("y", "back")}))
	if got := strings.Join(u.Posts(), ","); got != "b,y,x" {
		t.Fatalf("Posts() after re-render = %s", got)
	}
}

// A merged update written as one event (a dead letter) keeps each post's revision, so
// that its replay is fenced post by post.
func TestEventKeepsEachPostsRevision(t *testing.T) {
	u := New("c")
	x := ev([]event.Render{r("x", "old x")})
	x.Revision = 10
	y := ev([]event.Render{r("y", "y")}, "z")
	y.Revision = 20
	u.Add(x)
	u.Add(y)
	letter, err := event.Decode(event.Append(nil, u.Event()))
	if err != nil {
		t.Fatal(err)
	}
	if letter.Revision != 20 || letter.PostRevisions["x"] != 10 || len(letter.PostRevisions) != 1 {
		t.Fatalf("letter revisions: %d %v", letter.Revision, letter.PostRevisions)
	}
	replayed := New("c")
	replayed.Add(letter)
	if replayed.Revision("x") != 10 || replayed.Revision("y") != 20 || replayed.Revision("z") != 20 {
		t.Fatalf("replayed revisions x=%d y=%d z=%d", replayed.Revision("x"), replayed.Revision("y"), replayed.Revision("z"))
	}
	// A newer edit of x merged after the replay wins; an older one does not.
	newer := ev([]event.Render{r("x", "new x")})
	newer.Revision = 15
	replayed.Add(newer)
	if got := replayed.Renders()[0].Content; got != "new x" {
		t.Fatalf("x = %q after a newer edit", got)
	}
}

func TestApproxSizeIsALowerBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	b := &blog{rng: rng}
	u := New("c")
	for i := 0; i < 200; i++ {
		u.Add(b.event())
		exact := len(u.AppendJSON(nil))
		if u.ApproxSize() > exact || u.Size() != exact {
			t.Fatalf("after %d events: ApproxSize %d, Size %d, encoded %d", i+1, u.ApproxSize(), u.Size(), exact)
		}
	}
}

// Merging an update that removed a post and rendered it again puts the post where
// merging the events one by one would: at the end.
func TestMergeKeepsTheReAddPosition(t *testing.T) {
	events := []event.Event{ev([]event.Render{r("p", "1"), r("q", "1")}), ev(nil, "p"), ev([]event.Render{r("p", "2")})}
	seq := New("c")
	for _, e := range events {
		seq.Add(e)
	}
	first, second := New("c"), New("c")
	first.Add(events[0])
	second.Add(events[1])
	second.Add(events[2])
	first.Merge(second)
	if got, want := string(first.AppendJSON(nil)), string(seq.AppendJSON(nil)); got != want {
		t.Fatalf("merged\n got %s\nwant %s", got, want)
	}
}
