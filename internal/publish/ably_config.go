package publish

import (
	"errors"
	"regexp"
	"strings"
	"time"
)

// The Ably settings.
const (
	envAblyAPIKey          = "ABLY_API_KEY"
	envAblyRESTHost        = "ABLY_REST_HOST"
	envAblyPort            = "ABLY_PORT"
	envAblyTLS             = "ABLY_TLS"
	envAblyMaxMessageBytes = "ABLY_MAX_MESSAGE_BYTES"
)

// ablyKeyRe matches an API key as Ably shows it: appId.keyId:secret.
var ablyKeyRe = regexp.MustCompile(`^[^.:\s]+\.[^.:\s]+:\S+$`)

// AblyConfig configures the Ably provider.
type AblyConfig struct {
	APIKey string // ABLY_API_KEY, appId.keyId:secret; never logged
	// RESTHost replaces Ably's REST host (ABLY_REST_HOST): a proxy, or a fake in tests.
	// Empty means Ably's own hosts, with the library's fallback hosts.
	RESTHost string
	Port     int  // ABLY_PORT; zero means 443 with TLS, 80 without
	TLS      bool // ABLY_TLS; DefaultAblyConfig turns it on
	// MaxMessageBytes is the account's message size limit (ABLY_MAX_MESSAGE_BYTES):
	// zero means AblyDefaultMaxMessageBytes; free accounts have AblyFreeMaxMessageBytes.
	MaxMessageBytes int
	// Timeout bounds one HTTP request (LIVE_PROVIDER_TIMEOUT); zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// DefaultAblyConfig is the Ably configuration before any setting is read.
func DefaultAblyConfig() AblyConfig {
	return AblyConfig{TLS: true, MaxMessageBytes: AblyDefaultMaxMessageBytes}
}

// AblySettings declares the Ably settings, in the order they are documented.
func AblySettings() []Setting[AblyConfig] {
	return []Setting[AblyConfig]{
		{Env: envAblyAPIKey, Help: "Ably API key, appId.keyId:secret (prefer the environment: flags show in ps)", Secret: true, Field: func(c *AblyConfig) any { return &c.APIKey }},
		{Env: envAblyRESTHost, Help: "host replacing Ably's REST host (proxies, test servers)", Address: true, Field: func(c *AblyConfig) any { return &c.RESTHost }},
		{Env: envAblyPort, Help: "port of the Ably REST host; 0 is 443 with TLS, 80 without", Field: func(c *AblyConfig) any { return &c.Port }},
		{Env: envAblyTLS, Help: "use TLS for Ably; false (with ABLY_REST_HOST) sends the key over plain HTTP", Field: func(c *AblyConfig) any { return &c.TLS }},
		{Env: envAblyMaxMessageBytes, Help: "Ably's size limit of one publish: 65536 on paid accounts, 16384 on free ones", Field: func(c *AblyConfig) any { return &c.MaxMessageBytes }},
	}
}

// Validate reports every setting at fault, by its environment name. It never shows
// the key's secret.
func (c AblyConfig) Validate() error {
	var errs []error
	switch {
	case c.APIKey == "":
		errs = append(errs, badSetting(envAblyAPIKey, "required when LIVE_PROVIDER=ably"))
	case !ablyKeyRe.MatchString(c.APIKey):
		errs = append(errs, badSetting(envAblyAPIKey, "want appId.keyId:secret, the key as Ably's dashboard shows it"))
	}
	if c.RESTHost != "" {
		if err := checkHostPort(c.RESTHost); err != nil {
			errs = append(errs, badSetting(envAblyRESTHost, "%v", err))
		} else if strings.Contains(c.RESTHost, ":") {
			errs = append(errs, badSetting(envAblyRESTHost, "give the host alone and the port in %s", envAblyPort))
		}
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, badSetting(envAblyPort, "want 1 to 65535, or 0 for the default"))
	}
	if !c.TLS && c.RESTHost == "" {
		errs = append(errs, badSetting(envAblyTLS, "false needs %s: the key must not travel in clear to Ably's own hosts", envAblyRESTHost))
	}
	if c.MaxMessageBytes != 0 && (c.MaxMessageBytes < ablyMinMessageBytes || c.MaxMessageBytes > ablyMaxMessageBytesLimit) {
		errs = append(errs, badSetting(envAblyMaxMessageBytes, "want %d to %d (%d on paid accounts, %d on free ones)",
			ablyMinMessageBytes, ablyMaxMessageBytesLimit, AblyDefaultMaxMessageBytes, AblyFreeMaxMessageBytes))
	}
	if c.Timeout < 0 {
		errs = append(errs, badSetting(envProviderTimeout, "timeout %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}
