package main

import (
	"strings"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/browsertest"
	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/publish/ablytest"
	"github.com/liverelay/liverelay/internal/publish/piesockettest"
	"github.com/liverelay/liverelay/internal/workload"
)

// received is one provider message as a browser gets it.
type received struct{ channel, data string }

// TestEndToEndEveryProvider runs the same live blogs through a real nats-server and the
// worker to each provider's fake, reached through the provider's real client: switching
// LIVE_PROVIDER (and its settings) is the only change, and every provider's readers end
// with the CMS's pages.
func TestEndToEndEveryProvider(t *testing.T) {
	tests := []struct {
		provider string
		// point configures the worker for a fake and returns what the fake received.
		point func(t *testing.T, cfg *config.Config) func() []received
	}{
		{config.ProviderAbly, func(t *testing.T, cfg *config.Config) func() []received {
			const key = "liverelay.test:ably-secret"
			fake := ablytest.New(t, key)
			cfg.Ably = publish.AblyConfig{APIKey: key, RESTHost: fake.Host(), Port: fake.Port(), TLS: false, MaxMessageBytes: 65536}
			return func() []received {
				var out []received
				for _, m := range fake.Messages() {
					if m.Name != "live-page-update" {
						t.Fatalf("ably message name %q", m.Name)
					}
					out = append(out, received{m.Channel, m.Data})
				}
				return out
			}
		}},
		{config.ProviderPieSocket, func(t *testing.T, cfg *config.Config) func() []received {
			fake := piesockettest.New(t, "pie-key", "pie-secret")
			cfg.PieSocket = publish.PieSocketConfig{APIKey: "pie-key", Secret: "pie-secret", APIURL: fake.URL(), MaxMessageBytes: 16384}
			return func() []received {
				var out []received
				for _, m := range fake.Messages() {
					out = append(out, received{m.Channel, m.Data})
				}
				return out
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			h := newHarness(t)
			h.cfg.Provider = tt.provider
			got := tt.point(t, &h.cfg)
			h.startWorker()
			gen := smallBlogs(25, 7)
			want := cms{}
			want.send(t, gen, 1500, h.publish, nil)
			h.waitDelivered(60 * time.Second)
			pages := map[string]*browsertest.Page{}
			for _, r := range got() {
				show(t, pages, r.channel, r.data)
			}
			want.check(t, pages)
			if n := len(h.deadLetters()); n != 0 {
				t.Fatalf("%d dead letters", n)
			}
			t.Logf("%s: 1500 events → %d provider messages", tt.provider, len(got()))
		})
	}
}

// TestEndToEndAblySplitUpdates: with posts of several KB and a free account's 16 KiB
// limit, most merged updates are split into several Ably messages, each published on
// its own. The fake reads their ids as Ably does (the key of <base>:<idx> is <base>, idx
// the position in the publish) and drops a repeated key; every channel's readers must
// still end with the CMS's page, with nothing refused and nothing dead-lettered.
func TestEndToEndAblySplitUpdates(t *testing.T) {
	const (
		key      = "liverelay.test:ably-secret"
		maxBytes = 16384
		events   = 3000
	)
	fake := ablytest.New(t, key)
	fake.SetMaxMessageBytes(maxBytes)
	h := newHarness(t)
	h.cfg.Provider = config.ProviderAbly
	h.cfg.Ably = publish.AblyConfig{APIKey: key, RESTHost: fake.Host(), Port: fake.Port(), TLS: false, MaxMessageBytes: maxBytes}
	h.cfg.BatchWindow = 250 * time.Millisecond // several posts merge even when events come slowly (-race, a busy machine)
	h.startWorker()

	wl := workload.Default()
	wl.Channels, wl.Seed = 30, 9
	wl.MinSize, wl.MaxSize = 3000, 9000 // a merged update of a few posts is over 16 KiB
	wl.MaxLive = 30
	gen := workload.New(wl)
	want := cms{}
	want.send(t, gen, events, h.publish, nil)
	h.waitDelivered(90 * time.Second)

	msgs := fake.Messages()
	pages := map[string]*browsertest.Page{}
	parts := map[string]int{} // channel and update → its parts delivered
	for _, m := range msgs {
		if m.Name != "live-page-update" {
			t.Fatalf("ably message name %q", m.Name)
		}
		show(t, pages, m.Channel, m.Data)
		parts[m.Channel+" "+updateOf(m.ID)]++
	}
	want.check(t, pages)
	if n := len(h.deadLetters()); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	if n := fake.Rejected(); n != 0 {
		t.Errorf("the fake Ably refused %d requests", n)
	}
	split := 0
	for _, n := range parts {
		if n > 1 {
			split++
		}
	}
	t.Logf("%d events → %d Ably messages; %d updates arrived in several parts; %d repeats dropped", events, len(msgs), split, fake.Duplicates())
	if split < 20 {
		t.Errorf("only %d updates arrived in several parts, want 20 or more: parts were lost, or the test no longer splits updates", split)
	}
}

// updateOf is the update a message id belongs to: the relay names part i of an update
// <first source sequence>-<hash>-<i>, which goes to Ably as the id <…>:0.
func updateOf(id string) string {
	key := strings.TrimSuffix(id, ":0")
	if cut := strings.LastIndexByte(key, '-'); cut > 0 {
		return key[:cut]
	}
	return key
}
