package publish

import (
	"errors"
	"regexp"
	"time"
)

// The Pusher settings, named as Wagtail Live names them.
const (
	envPusherAppID   = "PUSHER_APP_ID"
	envPusherKey     = "PUSHER_APP_KEY"
	envPusherSecret  = "PUSHER_APP_SECRET"
	envPusherCluster = "PUSHER_APP_CLUSTER"
	envPusherHost    = "PUSHER_HOST"
	envPusherSecure  = "PUSHER_SECURE"
)

// pusherClusterRe matches cluster names such as "eu", "mt1" or "ap-southeast".
var pusherClusterRe = regexp.MustCompile(`^[a-z0-9-]+$`)

// PusherConfig configures the Pusher Channels provider.
type PusherConfig struct {
	AppID   string // PUSHER_APP_ID
	Key     string // PUSHER_APP_KEY
	Secret  string // PUSHER_APP_SECRET; never logged
	Cluster string // PUSHER_APP_CLUSTER, for example "eu"
	// Host is host or host:port of the HTTP API (PUSHER_HOST). It overrides Cluster:
	// a self-hosted Pusher-compatible server, or a fake in tests.
	Host string
	// Secure sends requests over HTTPS (PUSHER_SECURE). Leave it on for Pusher's own
	// hosts.
	Secure bool
	// Timeout bounds one HTTP request (LIVE_PROVIDER_TIMEOUT); zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// DefaultPusherConfig is the Pusher configuration before any setting is read.
func DefaultPusherConfig() PusherConfig { return PusherConfig{Secure: true} }

// PusherSettings declares the Pusher settings, in the order they are documented.
func PusherSettings() []Setting[PusherConfig] {
	return []Setting[PusherConfig]{
		{Env: envPusherAppID, Help: "Pusher app id", Field: func(c *PusherConfig) any { return &c.AppID }},
		{Env: envPusherKey, Help: "Pusher app key", Field: func(c *PusherConfig) any { return &c.Key }},
		{Env: envPusherSecret, Help: "Pusher app secret (prefer the environment: flags show in ps)", Secret: true, Field: func(c *PusherConfig) any { return &c.Secret }},
		{Env: envPusherCluster, Help: "Pusher cluster, e.g. eu", Field: func(c *PusherConfig) any { return &c.Cluster }},
		{Env: envPusherHost, Help: "host[:port] replacing the cluster's API host (self-hosted or test servers)", Address: true, Field: func(c *PusherConfig) any { return &c.Host }},
		{Env: envPusherSecure, Help: "use HTTPS for the Pusher API", Field: func(c *PusherConfig) any { return &c.Secure }},
	}
}

// Validate reports every setting at fault, by its environment name.
func (c PusherConfig) Validate() error {
	var errs []error
	if c.AppID == "" {
		errs = append(errs, badSetting(envPusherAppID, "required when LIVE_PROVIDER=pusher"))
	}
	if c.Key == "" {
		errs = append(errs, badSetting(envPusherKey, "required when LIVE_PROVIDER=pusher"))
	}
	if c.Secret == "" {
		errs = append(errs, badSetting(envPusherSecret, "required when LIVE_PROVIDER=pusher"))
	}
	switch {
	case c.Cluster == "" && c.Host == "":
		errs = append(errs, badSetting(envPusherCluster, "required when LIVE_PROVIDER=pusher, unless %s is set", envPusherHost))
	case c.Host != "":
		if err := checkHostPort(c.Host); err != nil {
			errs = append(errs, badSetting(envPusherHost, "%v", err))
		}
	case !pusherClusterRe.MatchString(c.Cluster):
		errs = append(errs, badSetting(envPusherCluster, "want letters, digits and '-', like \"eu\""))
	}
	if c.Timeout < 0 {
		errs = append(errs, badSetting(envProviderTimeout, "timeout %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}
