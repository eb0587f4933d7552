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
		return publish.NewPusher(cfg.PusherConfig(), log.Named("pusher"))
	case config.ProviderAbly:
		return publish.NewAbly(cfg.AblyConfig(), log.Named("ably"))
	case config.ProviderPieSocket:
		return publish.NewPieSocket(cfg.PieSocketConfig(), log.Named("piesocket"))
	default:
		return nil, fmt.Errorf("LIVE_PROVIDER=%q: want one of %v", cfg.Provider, config.Providers())
	}
}
