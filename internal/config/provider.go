package config

import "github.com/liverelay/liverelay/internal/publish"

// PusherConfig is the Pusher provider's configuration.
func (c Config) PusherConfig() publish.PusherConfig {
	p := c.Pusher
	return publish.PusherConfig{AppID: p.AppID, Key: p.Key, Secret: p.Secret, Cluster: p.Cluster, Host: p.Host, Secure: p.Secure, Timeout: c.ProviderTimeout}
}

// AblyConfig is the Ably provider's configuration.
func (c Config) AblyConfig() publish.AblyConfig {
	a := c.Ably
	return publish.AblyConfig{APIKey: a.APIKey, RESTHost: a.RESTHost, Port: a.Port, TLS: a.TLS, MaxMessageBytes: a.MaxMessageBytes, Timeout: c.ProviderTimeout}
}

// PieSocketConfig is the PieSocket provider's configuration.
func (c Config) PieSocketConfig() publish.PieSocketConfig {
	p := c.PieSocket
	return publish.PieSocketConfig{APIKey: p.APIKey, Secret: p.Secret, ClusterID: p.ClusterID, APIURL: p.APIURL, MaxMessageBytes: p.MaxMessageBytes, Timeout: c.ProviderTimeout}
}
