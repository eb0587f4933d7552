package worker

import (
	"testing"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/config"
)

// The worker's own connection to its embedded server, and an operator command without
// LIVE_NATS_URL, present the embedded server's credentials; LIVE_NATS_* credentials,
// when given (a command pointed elsewhere with --nats), win.
func TestAuth(t *testing.T) {
	tests := []struct {
		name string
		set  func(*config.Config)
		want broker.Auth
	}{
		{"embedded, no auth", func(*config.Config) {}, broker.Auth{}},
		{"embedded token", func(c *config.Config) { c.EmbeddedToken = "t" }, broker.Auth{Token: "t"}},
		{"embedded user", func(c *config.Config) { c.EmbeddedUser, c.EmbeddedPassword = "u", "p" }, broker.Auth{User: "u", Password: "p"}},
		{"NATS token with an embedded token", func(c *config.Config) { c.EmbeddedToken, c.NATSToken = "t", "n" }, broker.Auth{Token: "n"}},
		{"external server", func(c *config.Config) { c.NATSURL, c.NATSUser, c.NATSPassword = "nats://n:4222", "u", "p" }, broker.Auth{User: "u", Password: "p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.set(&c)
			if got := Auth(c); got != tt.want {
				t.Errorf("Auth = %+v, want %+v", got, tt.want)
			}
		})
	}
}
