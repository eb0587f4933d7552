package workload

import (
	"testing"

	"github.com/liverelay/liverelay/internal/browsertest"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
)

func TestGeneratorMakesValidBoundedBlogs(t *testing.T) {
	cfg := Default()
	cfg.Channels = 5
	cfg.MaxLive = 20
	g := New(cfg)
	pages := map[string]*browsertest.Page{}
	var last int64
	kinds := map[string]int{}
	for i := 0; i < 5000; i++ {
		ev := g.Next()
		if ev.Revision <= last {
			t.Fatalf("revision %d after %d", ev.Revision, last)
		}
		last = ev.Revision
		again, err := event.Decode(event.Append(nil, ev))
		if err != nil {
			t.Fatalf("generated event does not decode: %v", err)
		}
		for _, r := range again.Renders {
			if len(r.Content) < cfg.MinSize-100 || len(r.Content) > cfg.MaxSize+100 {
				t.Fatalf("post of %d bytes outside [%d, %d]", len(r.Content), cfg.MinSize, cfg.MaxSize)
			}
		}
		p := pages[ev.Channel]
		if p == nil {
			p = &browsertest.Page{}
			pages[ev.Channel] = p
		}
		before := len(p.Posts)
		u := merge.New(ev.Channel)
		u.Add(ev)
		if err := p.Apply(u.AppendJSON(nil)); err != nil {
			t.Fatal(err)
		}
		switch {
		case len(p.Posts) > before:
			kinds["new"]++
		case len(p.Posts) < before:
			kinds["remove"]++
		default:
			kinds["edit"]++
		}
		if len(p.Posts) > cfg.MaxLive {
			t.Fatalf("channel %s has %d live posts, over MaxLive %d", ev.Channel, len(p.Posts), cfg.MaxLive)
		}
	}
	if len(pages) != 5 || kinds["new"] == 0 || kinds["edit"] < kinds["new"] || kinds["remove"] == 0 {
		t.Fatalf("mix: %v over %d channels", kinds, len(pages))
	}
}
