package relay

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/publish/ablytest"
)

const testAblyKey = "app.key:secret"

// splitJob is a job whose update of posts posts of about 300 bytes comes from the
// source sequences seqs; edit changes the content of one post.
func splitJob(seqs []uint64, posts int, edit bool) *job {
	ev := event.Event{Channel: "page-1", Revision: 1}
	for i := range posts {
		content := fmt.Sprintf("<p>post %d</p>", i) + strings.Repeat("x", 300)
		if edit && i == posts/2 {
			content += " edited"
		}
		ev.Renders = append(ev.Renders, event.Render{ID: fmt.Sprintf("post-%d", i), Show: true, Content: content})
	}
	u := merge.New("page-1")
	u.Add(ev)
	j := &job{ch: &channel{name: "page-1", token: "page-1"}, update: u}
	for _, s := range seqs {
		j.sources = append(j.sources, Input{Event: ev, Seq: s, Subject: "live.events.0.page-1"})
	}
	return j
}

func ids(msgs []publish.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// startAbly returns a fake Ably and a publisher to it that splits messages above 1 KiB.
func startAbly(t *testing.T) (*ablytest.Server, *publish.Ably) {
	t.Helper()
	srv := ablytest.New(t, testAblyKey)
	p, err := publish.NewAbly(publish.AblyConfig{APIKey: testAblyKey, RESTHost: srv.Host(), Port: srv.Port(),
		MaxMessageBytes: 1024, Timeout: 5 * time.Second}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return srv, p
}

// TestMessageIDs: each part of a split update has an id of its own, <first source
// sequence>-<hash>-<part>; a retry (this worker, or another given the same sources)
// repeats them; other sources or other content give other ids.
func TestMessageIDs(t *testing.T) {
	_, p := startAbly(t)
	prepared := func(j *job) []string {
		j.prepare(p, p.Name())
		if len(j.letters) != 0 || j.deadReason != "" {
			t.Fatalf("prepare dead-lettered: %q %+v", j.deadReason, j.letters)
		}
		return ids(j.msgs)
	}
	first := prepared(splitJob([]uint64{41, 43}, 12, false))
	if len(first) < 4 {
		t.Fatalf("the update was split in %d parts, want 4 or more", len(first))
	}
	form := regexp.MustCompile(`^41-[0-9a-z]+-([0-9]+)$`)
	seen := map[string]bool{}
	for i, id := range first {
		m := form.FindStringSubmatch(id)
		if m == nil || m[1] != fmt.Sprint(i) {
			t.Errorf("part %d has id %q, want 41-<hash>-%d", i, id, i)
		}
		if seen[id] {
			t.Errorf("id %q given to two parts", id)
		}
		seen[id] = true
	}

	if again := prepared(splitJob([]uint64{41, 43}, 12, false)); fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("the same sources and content got other ids:\n%v\n%v", again, first)
	}
	for name, j := range map[string]*job{
		"other content":          splitJob([]uint64{41, 43}, 12, true),
		"another source":         splitJob([]uint64{41, 42, 43}, 12, false),
		"the same first source":  splitJob([]uint64{41, 44}, 12, false),
		"one part less or more":  splitJob([]uint64{41, 43}, 9, false),
		"a single, unsplit part": splitJob([]uint64{41, 43}, 1, false),
	} {
		for _, id := range prepared(j) {
			if seen[id] {
				t.Errorf("%s: id %q repeats an id of the first update", name, id)
			}
		}
	}
}

// TestMessageIDsOverAbly publishes a split update's messages to the fake Ably, which
// reads ids as Ably does, twice over (a retry): every part reaches readers once.
func TestMessageIDsOverAbly(t *testing.T) {
	srv, p := startAbly(t)
	j := splitJob([]uint64{7}, 12, false)
	j.prepare(p, p.Name())
	for attempt := range 2 {
		if err := p.Publish(t.Context(), j.msgs); err != nil {
			t.Fatalf("attempt %d: %v", attempt+1, err)
		}
	}
	got := srv.Messages()
	if len(got) != len(j.msgs) || srv.Duplicates() != int64(len(j.msgs)) {
		t.Fatalf("%d of %d parts delivered, %d dropped as repeats; want every part once", len(got), len(j.msgs), srv.Duplicates())
	}
	for i, m := range got {
		if m.Data != string(j.msgs[i].Data) {
			t.Errorf("message %d is not part %d", i, i)
		}
	}
}
