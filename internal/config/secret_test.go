package config

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/liverelay/liverelay/internal/publish"
)

// No rendering of the configuration — the start-up line, String, a validation error —
// shows a credential written into a setting: every URL of a LIVE_NATS_URL list is
// masked, and a rejected PUSHER_HOST or PIESOCKET_API_URL is never echoed with its
// user info.
func TestNoRenderingShowsACredential(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Config)
	}{
		{"two NATS URLs", func(c *Config) { c.NATSURL = "nats://alice:hunter1@nats-1:4222,nats://bob:hunter2@nats-2:4222" }},
		{"two NATS URLs, spaced, no scheme", func(c *Config) { c.NATSURL = "nats://nats-1:4222, bob:hunter2@nats-2:4222" }},
		{"bad second NATS URL", func(c *Config) { c.NATSURL = "nats://nats-1:4222,nats://bob:hunter2@nats-2:port/x" }},
		{"pusher host with user info", func(c *Config) {
			c.Provider, c.Pusher = ProviderPusher, publish.PusherConfig{AppID: "1", Key: "k", Secret: "s", Host: "u:hunter2@host:1"}
		}},
		{"pusher host with user info and no port", func(c *Config) {
			c.Provider, c.Pusher = ProviderPusher, publish.PusherConfig{AppID: "1", Key: "k", Secret: "s", Host: "hunter2@host"}
		}},
		{"piesocket URL with user info", func(c *Config) {
			c.Provider, c.PieSocket = ProviderPieSocket, publish.PieSocketConfig{APIKey: "k", Secret: "s", APIURL: "https://u:hunter2@host/api/publish"}
		}},
		{"piesocket URL that does not parse", func(c *Config) {
			c.Provider, c.PieSocket = ProviderPieSocket, publish.PieSocketConfig{APIKey: "k", Secret: "s", APIURL: "https://u:hunter2@host:x/api"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.set(&c)
			core, logs := observer.New(zapcore.InfoLevel)
			zap.New(core).Info("liverelay worker starting", zap.Object("config", c))
			var out strings.Builder
			for _, e := range logs.All() {
				for k, v := range e.ContextMap() {
					out.WriteString(k + "=" + strings.ReplaceAll(strings.TrimSpace(fmtAny(v)), "\n", " ") + "\n")
				}
			}
			out.WriteString(c.String() + "\n")
			if err := c.Validate(); err != nil {
				out.WriteString(err.Error())
			}
			if strings.Contains(out.String(), "hunter") {
				t.Errorf("a credential is shown:\n%s", out.String())
			}
		})
	}
}

func fmtAny(v any) string {
	if m, ok := v.(map[string]any); ok {
		var b strings.Builder
		for k, x := range m {
			b.WriteString(k + ":" + fmtAny(x) + " ")
		}
		return b.String()
	}
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}
