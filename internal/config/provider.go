package config

import (
	"slices"

	"github.com/liverelay/liverelay/internal/publish"
)

// Provider names accepted by LIVE_PROVIDER.
const (
	ProviderStdout = "stdout"
	ProviderPusher = "pusher"
	// ProviderAbly publishes to Ably's REST API.
	ProviderAbly = "ably"
	// ProviderPieSocket publishes to PieSocket's publish API.
	ProviderPieSocket = "piesocket"
)

// provider is one accepted value of LIVE_PROVIDER, with its settings and their
// check, both declared by the provider in internal/publish.
type provider struct {
	name     string
	settings func() []spec      // nil: none
	validate func(Config) error // nil: nothing to check
}

// providers lists the accepted values of LIVE_PROVIDER, in the order their settings
// are documented. A new provider is one more entry here, with its field in Config
// and its defaults in Default; the worker builds it (internal/worker/provider.go).
func providers() []provider {
	return []provider{
		{name: ProviderStdout},
		{
			name: ProviderPusher,
			settings: func() []spec {
				return providerSpecs(publish.PusherSettings(), func(c *Config) *publish.PusherConfig { return &c.Pusher })
			},
			validate: func(c Config) error { return c.PusherConfig().Validate() },
		},
		{
			name: ProviderAbly,
			settings: func() []spec {
				return providerSpecs(publish.AblySettings(), func(c *Config) *publish.AblyConfig { return &c.Ably })
			},
			validate: func(c Config) error { return c.AblyConfig().Validate() },
		},
		{
			name: ProviderPieSocket,
			settings: func() []spec {
				return providerSpecs(publish.PieSocketSettings(), func(c *Config) *publish.PieSocketConfig { return &c.PieSocket })
			},
			validate: func(c Config) error { return c.PieSocketConfig().Validate() },
		},
	}
}

// Providers returns the accepted values of LIVE_PROVIDER.
func Providers() []string {
	var names []string
	for _, p := range providers() {
		names = append(names, p.name)
	}
	return names
}

// lookupProvider returns the provider named name.
func lookupProvider(name string) (provider, bool) {
	all := providers()
	i := slices.IndexFunc(all, func(p provider) bool { return p.name == name })
	if i < 0 {
		return provider{}, false
	}
	return all[i], true
}

// providerSpecs turns a provider's settings, declared by publish, into specs
// of the field at(c) of a Config.
func providerSpecs[P any](settings []publish.Setting[P], at func(*Config) *P) []spec {
	specs := make([]spec, 0, len(settings))
	for _, s := range settings {
		sp := spec{env: s.Env, help: s.Help, secret: s.Secret, field: func(c *Config) any { return s.Field(at(c)) }}
		if s.Address {
			sp.mask = hideUserinfo
		}
		specs = append(specs, sp)
	}
	return specs
}

// PusherConfig is the Pusher provider's configuration, with LIVE_PROVIDER_TIMEOUT.
func (c Config) PusherConfig() publish.PusherConfig {
	p := c.Pusher
	p.Timeout = c.ProviderTimeout
	return p
}

// AblyConfig is the Ably provider's configuration, with LIVE_PROVIDER_TIMEOUT.
func (c Config) AblyConfig() publish.AblyConfig {
	a := c.Ably
	a.Timeout = c.ProviderTimeout
	return a
}

// PieSocketConfig is the PieSocket provider's configuration, with
// LIVE_PROVIDER_TIMEOUT.
func (c Config) PieSocketConfig() publish.PieSocketConfig {
	p := c.PieSocket
	p.Timeout = c.ProviderTimeout
	return p
}
