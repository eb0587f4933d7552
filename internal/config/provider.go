package config

import "github.com/liverelay/liverelay/internal/publish"

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
