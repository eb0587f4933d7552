// Package workload generates the change events of busy live blogs, as a Wagtail Live
// newsroom produces them: new posts, edits (with bursts of quick fixes to the same
// post), removals, and post sizes from a few hundred bytes to about 9 KB. Tests use it
// to check end-to-end results, and the benchmark to load the relay.
package workload

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/liverelay/liverelay/internal/event"
)

// Config shapes the workload. Shares need not add up to one: they are weights.
type Config struct {
	Channels    int
	Seed        uint64
	NewShare    float64 // weight of "a new post"
	EditShare   float64 // weight of "an edit of a live post"
	RemoveShare float64 // weight of "a removal"
	// BurstShare is the chance that an edit is followed at once by more edits of the
	// same post (an editor fixing typos); BurstLen edits in all.
	BurstShare float64
	BurstLen   int
	MinSize    int // post HTML size in bytes, drawn log-uniformly
	MaxSize    int
	// MaxLive bounds the live posts of one channel; past it a new post replaces a
	// removal, so long runs stay bounded.
	MaxLive int
}

// Default is a newsroom-like mix: mostly edits, bursts of fixes, few removals.
func Default() Config {
	return Config{Channels: 100, Seed: 1, NewShare: 0.3, EditShare: 0.6, RemoveShare: 0.1,
		BurstShare: 0.3, BurstLen: 5, MinSize: 300, MaxSize: 9000, MaxLive: 200}
}

// Generator produces events. It is not safe for concurrent use.
type Generator struct {
	cfg   Config
	rng   *rand.Rand
	blogs []*blog
	clock int64
	burst []burstStep
	text  string
}

type blog struct {
	channel string
	live    []string
	next    int
}

type burstStep struct {
	b    *blog
	post string
	left int
}

// New returns a generator of cfg.
func New(cfg Config) *Generator {
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x11fe)), clock: time.Now().UnixMicro()}
	for i := 0; i < cfg.Channels; i++ {
		g.blogs = append(g.blogs, &blog{channel: fmt.Sprintf("live-blog-%04d", i)})
	}
	g.text = strings.Repeat("Breaking: the match goes on & the crowd <cheers>. ", 1+cfg.MaxSize/50)
	return g
}

// Channels are the channel ids the generator uses.
func (g *Generator) Channels() []string {
	out := make([]string, len(g.blogs))
	for i, b := range g.blogs {
		out[i] = b.channel
	}
	return out
}

// Next returns the next event. Revisions grow by at least one microsecond per event.
func (g *Generator) Next() event.Event {
	g.clock = max(g.clock+1, time.Now().UnixMicro())
	if len(g.burst) > 0 {
		s := &g.burst[0]
		s.left--
		ev := g.edit(s.b, s.post)
		if s.left == 0 {
			g.burst = g.burst[1:]
		}
		return ev
	}
	b := g.blogs[g.rng.IntN(len(g.blogs))]
	total := g.cfg.NewShare + g.cfg.EditShare + g.cfg.RemoveShare
	x := g.rng.Float64() * total
	switch {
	case len(b.live) == 0 || x < g.cfg.NewShare:
		if g.cfg.MaxLive > 0 && len(b.live) >= g.cfg.MaxLive {
			return g.remove(b)
		}
		return g.add(b)
	case x < g.cfg.NewShare+g.cfg.EditShare:
		post := b.live[g.rng.IntN(len(b.live))]
		if g.cfg.BurstLen > 1 && g.rng.Float64() < g.cfg.BurstShare {
			g.burst = append(g.burst, burstStep{b: b, post: post, left: g.cfg.BurstLen - 1})
		}
		return g.edit(b, post)
	default:
		return g.remove(b)
	}
}

func (g *Generator) add(b *blog) event.Event {
	id := fmt.Sprintf("%08x-%04x-4000-8000-%012x", g.rng.Uint32(), b.next&0xffff, b.next)
	b.next++
	b.live = append(b.live, id)
	return g.edit(b, id)
}

func (g *Generator) edit(b *blog, post string) event.Event {
	return event.Event{
		Channel:   b.channel,
		Renders:   []event.Render{{ID: post, Show: g.rng.IntN(10) > 0, Content: g.html(post)}},
		Removals:  []string{},
		Revision:  g.clock,
		EmittedAt: time.Now(),
	}
}

func (g *Generator) remove(b *blog) event.Event {
	i := g.rng.IntN(len(b.live))
	id := b.live[i]
	b.live[i] = b.live[len(b.live)-1]
	b.live = b.live[:len(b.live)-1]
	return event.Event{Channel: b.channel, Removals: []string{id}, Revision: g.clock, EmittedAt: time.Now()}
}

// html returns a post body whose size is drawn log-uniformly in [MinSize, MaxSize].
func (g *Generator) html(post string) string {
	lo, hi := float64(max(g.cfg.MinSize, 64)), float64(max(g.cfg.MaxSize, g.cfg.MinSize, 64))
	size := int(lo * math.Pow(hi/lo, g.rng.Float64()))
	head := fmt.Sprintf(`<div class="live-post" data-post-id="%s" data-rev="%d"><p>`, post, g.clock)
	tail := `</p></div>`
	n := max(size-len(head)-len(tail), 0)
	return head + g.text[:min(n, len(g.text))] + tail
}
