package worker

import (
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/relay"
)

// newProvider builds the provider LIVE_PROVIDER names.
func newProvider(cfg config.Config, stdout io.Writer, log *zap.Logger) (relay.Provider, error) {
	switch cfg.Provider {
	case config.ProviderStdout:
		return publish.NewStdout(stdout), nil
	case config.ProviderPusher:
		return publish.NewPusher(publish.PusherConfig{
			AppID: cfg.Pusher.AppID, Key: cfg.Pusher.Key, Secret: cfg.Pusher.Secret,
			Cluster: cfg.Pusher.Cluster, Host: cfg.Pusher.Host, Secure: cfg.Pusher.Secure, Timeout: cfg.ProviderTimeout,
		}, log.Named("pusher"))
	case config.ProviderAbly:
		a := cfg.Ably
		return publish.NewAbly(publish.AblyConfig{
			APIKey: a.APIKey, RESTHost: a.RESTHost, Port: a.Port, TLS: a.TLS, MaxMessageBytes: a.MaxMessageBytes, Timeout: cfg.ProviderTimeout,
		}, log.Named("ably"))
	case config.ProviderPieSocket:
		p := cfg.PieSocket
		return publish.NewPieSocket(publish.PieSocketConfig{
			APIKey: p.APIKey, Secret: p.Secret, ClusterID: p.ClusterID, APIURL: p.APIURL, MaxMessageBytes: p.MaxMessageBytes, Timeout: cfg.ProviderTimeout,
		}, log.Named("piesocket"))
	default:
		return nil, fmt.Errorf("LIVE_PROVIDER=%q: want one of %v", cfg.Provider, config.Providers())
	}
}
