package relay_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/relay"
)

// A relay missing a dependency, or with a config it cannot run, is refused before it
// registers any metric.
func TestNewRefusesWhatItCannotRunWith(t *testing.T) {
	for name, change := range map[string]func(*relay.Config, *relay.Deps){
		"no provider":     func(_ *relay.Config, d *relay.Deps) { d.Provider = nil },
		"no dead letters": func(_ *relay.Config, d *relay.Deps) { d.DeadLetters = nil },
		"no fence":        func(_ *relay.Config, d *relay.Deps) { d.Fence = nil },
		"no owner":        func(_ *relay.Config, d *relay.Deps) { d.Owner = nil },
		"no registry":     func(_ *relay.Config, d *relay.Deps) { d.Registry = nil },
		"no logger":       func(_ *relay.Config, d *relay.Deps) { d.Log = nil },
		"no concurrency":  func(c *relay.Config, _ *relay.Deps) { c.Concurrency = 0 },
		"negative window": func(c *relay.Config, _ *relay.Deps) { c.Window = -1 },
		"no keep-alive":   func(c *relay.Config, _ *relay.Deps) { c.KeepAlive = 0 },
		"no retry wait":   func(c *relay.Config, _ *relay.Deps) { c.Retry.Initial = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			cfg := baseConfig()
			deps := relay.Deps{Provider: &fakeProvider{}, DeadLetters: &fakeDead{}, Fence: noFence{}, Owner: everyPartition{}, Registry: reg, Log: zaptest.NewLogger(t)}
			change(&cfg, &deps)
			if _, err := relay.New(cfg, deps); err == nil {
				t.Fatal("New accepted it")
			}
			if mfs, _ := reg.Gather(); len(mfs) != 0 {
				t.Fatalf("%d metrics registered", len(mfs))
			}
		})
	}
	if _, err := relay.New(baseConfig(), relay.Deps{Provider: &fakeProvider{}, DeadLetters: &fakeDead{}, Fence: noFence{},
		Owner: everyPartition{}, Registry: prometheus.NewRegistry(), Log: zaptest.NewLogger(t)}); err != nil {
		t.Fatalf("New refused a complete relay: %v", err)
	}
}
