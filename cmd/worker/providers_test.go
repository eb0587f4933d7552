package main

import (
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/browser"
	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/publish/ablytest"
	"github.com/liverelay/liverelay/internal/publish/piesockettest"
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
			cfg.Ably = config.Ably{APIKey: key, RESTHost: fake.Host(), Port: fake.Port(), TLS: false, MaxMessageBytes: 65536}
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
			cfg.PieSocket = config.PieSocket{APIKey: "pie-key", Secret: "pie-secret", APIURL: fake.URL(), MaxMessageBytes: 16384}
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
			for i := 0; i < 1500; i++ {
				ev := gen.Next()
				want.apply(t, ev)
				h.publish(ev)
			}
			h.waitDelivered(60 * time.Second)
			pages := map[string]*browser.Page{}
			for _, r := range got() {
				p := pages[r.channel]
				if p == nil {
					p = &browser.Page{}
					pages[r.channel] = p
				}
				if err := p.Apply([]byte(r.data)); err != nil {
					t.Fatalf("%s: %v", r.channel, err)
				}
			}
			want.check(t, pages)
			if n := len(h.deadLetters()); n != 0 {
				t.Fatalf("%d dead letters", n)
			}
			t.Logf("%s: 1500 events → %d provider messages", tt.provider, len(got()))
		})
	}
}
