package publish

import (
	"errors"
	"net/url"
	"regexp"
	"time"
)

// The PieSocket settings.
const (
	envPieSocketAPIKey          = "PIESOCKET_API_KEY"
	envPieSocketSecret          = "PIESOCKET_SECRET"
	envPieSocketClusterID       = "PIESOCKET_CLUSTER_ID"
	envPieSocketAPIURL          = "PIESOCKET_API_URL"
	envPieSocketMaxMessageBytes = "PIESOCKET_MAX_MESSAGE_BYTES"
)

// pieSocketClusterRe matches cluster ids such as "demo" or "s1234.nyc1".
var pieSocketClusterRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$`)

// PieSocketConfig configures the PieSocket provider.
type PieSocketConfig struct {
	APIKey    string // PIESOCKET_API_KEY
	Secret    string // PIESOCKET_SECRET; sent in each request's body, never logged
	ClusterID string // PIESOCKET_CLUSTER_ID: the API is https://<cluster_id>.piesocket.com/api/publish
	// APIURL replaces the whole publish URL (PIESOCKET_API_URL): a proxy, or a fake in
	// tests.
	APIURL string
	// MaxMessageBytes bounds the update of one message (PIESOCKET_MAX_MESSAGE_BYTES);
	// zero means PieSocketDefaultMaxMessageBytes.
	MaxMessageBytes int
	// Timeout bounds one HTTP request (LIVE_PROVIDER_TIMEOUT); zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// DefaultPieSocketConfig is the PieSocket configuration before any setting is read.
func DefaultPieSocketConfig() PieSocketConfig {
	return PieSocketConfig{MaxMessageBytes: PieSocketDefaultMaxMessageBytes}
}

// PieSocketSettings declares the PieSocket settings, in the order they are documented.
func PieSocketSettings() []Setting[PieSocketConfig] {
	return []Setting[PieSocketConfig]{
		{Env: envPieSocketAPIKey, Help: "PieSocket API key", Field: func(c *PieSocketConfig) any { return &c.APIKey }},
		{Env: envPieSocketSecret, Help: "PieSocket API secret (prefer the environment: flags show in ps)", Secret: true, Field: func(c *PieSocketConfig) any { return &c.Secret }},
		{Env: envPieSocketClusterID, Help: "PieSocket cluster id: publishes go to https://<id>.piesocket.com/api/publish", Field: func(c *PieSocketConfig) any { return &c.ClusterID }},
		{Env: envPieSocketAPIURL, Help: "full publish URL replacing the cluster's (proxies, test servers)", Address: true, Field: func(c *PieSocketConfig) any { return &c.APIURL }},
		{Env: envPieSocketMaxMessageBytes, Help: "largest update sent in one PieSocket message (PieSocket documents none)", Field: func(c *PieSocketConfig) any { return &c.MaxMessageBytes }},
	}
}

// Validate reports every setting at fault, by its environment name. It never shows
// the secret.
func (c PieSocketConfig) Validate() error {
	var errs []error
	if c.APIKey == "" {
		errs = append(errs, badSetting(envPieSocketAPIKey, "required when LIVE_PROVIDER=piesocket"))
	}
	if c.Secret == "" {
		errs = append(errs, badSetting(envPieSocketSecret, "required when LIVE_PROVIDER=piesocket"))
	}
	switch {
	case c.APIURL != "":
		if _, err := pieSocketURL(c.APIURL); err != nil {
			errs = append(errs, badSetting(envPieSocketAPIURL, "%v", err))
		}
	case c.ClusterID == "":
		errs = append(errs, badSetting(envPieSocketClusterID, "required when LIVE_PROVIDER=piesocket, unless %s is set", envPieSocketAPIURL))
	case !pieSocketClusterRe.MatchString(c.ClusterID):
		errs = append(errs, badSetting(envPieSocketClusterID, "want letters, digits, '.' and '-', like \"demo\" or \"s1234.nyc1\""))
	}
	if c.MaxMessageBytes < 0 || c.MaxMessageBytes > pieSocketMaxMessageBytesLimit {
		errs = append(errs, badSetting(envPieSocketMaxMessageBytes, "want 1 to %d, or 0 for %d",
			pieSocketMaxMessageBytesLimit, PieSocketDefaultMaxMessageBytes))
	}
	if c.Timeout < 0 {
		errs = append(errs, badSetting(envProviderTimeout, "timeout %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// pieSocketURL checks an absolute http(s) URL without credentials.
func pieSocketURL(raw string) (*url.URL, error) {
	// The value is never quoted back: a rejected one may hold credentials.
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("not a URL such as https://host/api/publish")
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, errors.New("want an http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("the URL has no host")
	case u.User != nil:
		return nil, errors.New("the URL must not hold credentials: the key and secret travel in the body")
	}
	return u, nil
}
