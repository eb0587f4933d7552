package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/liverelay/liverelay/internal/broker"
)

// FieldError is one problem with one setting. Validate and LoadEnv return
// them joined; find them with errors.As.
type FieldError struct {
	Env    string // the environment variable, e.g. LIVE_PARTITIONS
	Value  string // the value as it would be written in the environment; secrets redacted
	Reason string // what is wrong and what is allowed
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s=%q: %s", e.Env, e.Value, e.Reason)
}

// Validate checks every setting and returns all problems joined, each a
// *FieldError naming the variable and the allowed values.
func (c Config) Validate() error {
	v := newChecker(&c)

	c.validateNATS(v)

	if c.Embedded() && c.DataDir == "" {
		v.fail("LIVE_DATA_DIR", "required with the embedded server (LIVE_NATS_URL empty)")
	}
	v.hostPort("LIVE_EMBEDDED_LISTEN", c.EmbeddedListen)
	c.validateEmbeddedAuth(v)
	if !strings.EqualFold(c.EmbeddedSync, SyncAlways) {
		if d, err := time.ParseDuration(c.EmbeddedSync); err != nil || d <= 0 {
			v.fail("LIVE_EMBEDDED_SYNC", `want "always" or a positive interval such as 2m`)
		}
	}

	subjectsOK := v.subject("LIVE_SUBJECT_PREFIX", c.SubjectPrefix)
	dlqOK := v.subject("LIVE_DLQ_PREFIX", c.DLQPrefix)
	if subjectsOK && dlqOK && overlaps(c.SubjectPrefix, c.DLQPrefix) {
		v.fail("LIVE_DLQ_PREFIX", "must not overlap LIVE_SUBJECT_PREFIX=%q: both streams would claim the same subjects", c.SubjectPrefix)
	}
	v.streamName("LIVE_STREAM", c.Stream)
	v.streamName("LIVE_DLQ_STREAM", c.DLQStream)
	if c.Stream != "" && c.Stream == c.DLQStream {
		v.fail("LIVE_DLQ_STREAM", "must differ from LIVE_STREAM")
	}
	if v.intRange("LIVE_STREAM_REPLICAS", c.Replicas, 1, 5) && c.Replicas > 1 && c.Embedded() {
		v.fail("LIVE_STREAM_REPLICAS", "want 1 with the embedded server (LIVE_NATS_URL empty): it is a single node")
	}
	v.intRange("LIVE_PARTITIONS", c.Partitions, 0, 1024)
	v.atLeast("LIVE_DUPLICATE_WINDOW", c.DuplicateWindow, time.Second)
	switch {
	case c.EventsMaxAge < time.Hour:
		v.fail("LIVE_EVENTS_MAX_AGE", "want at least 1h: events not yet delivered are dropped once older, so it must outlive an outage of the workers")
	case c.DuplicateWindow > c.EventsMaxAge:
		v.fail("LIVE_EVENTS_MAX_AGE", "want at least LIVE_DUPLICATE_WINDOW=%s: JetStream keeps no de-duplication id longer than the events", formatDuration(c.DuplicateWindow))
	}
	v.streamName("LIVE_FENCE_BUCKET", c.FenceBucket)
	if c.DLQMaxAge != 0 && c.DLQMaxAge < time.Hour {
		v.fail("LIVE_DLQ_MAX_AGE", "want 0 (keep) or at least 1h: letters must outlive an incident")
	}
	v.atLeast("LIVE_FENCE_TTL", c.FenceTTL, time.Minute)

	c.validateProvider(v)
	v.durRange("LIVE_PROVIDER_TIMEOUT", c.ProviderTimeout, 100*time.Millisecond, 2*time.Minute)

	v.durRange("LIVE_BATCH_WINDOW", c.BatchWindow, 0, 10*time.Second)
	v.intRange("LIVE_BATCH_MAX_EVENTS", c.BatchMaxEvents, 1, 100000)
	if c.BatchMaxBytes < 1024 {
		v.fail("LIVE_BATCH_MAX_BYTES", "want at least 1024 bytes")
	}
	v.intRange("LIVE_PUBLISH_CONCURRENCY", c.PublishConcurrency, 1, 1024)
	v.intRange("LIVE_MAX_ACK_PENDING", c.MaxAckPending, 1, 1000000)
	v.atLeast("LIVE_ACK_WAIT", c.AckWait, time.Second)
	if c.MaxDeliver < 1 && c.MaxDeliver != -1 {
		v.fail("LIVE_MAX_DELIVER", "want at least 1, or -1 for unlimited")
	}
	v.atLeast("LIVE_SHUTDOWN_TIMEOUT", c.ShutdownTimeout, time.Second)

	if len(c.WorkerName) > 64 || strings.IndexFunc(c.WorkerName, func(r rune) bool { return r < ' ' || r == 0x7f || r == utf8.RuneError }) >= 0 {
		v.fail("LIVE_WORKER_NAME", "want at most 64 bytes of printable UTF-8, or empty for the host name and process id")
	}
	if c.HTTPAddr != "" {
		v.hostPort("LIVE_HTTP_ADDR", c.HTTPAddr)
	}
	v.oneOf("LIVE_LOG_LEVEL", c.LogLevel, `want "debug", "info", "warn" or "error"`, "debug", "info", "warn", "error")
	v.oneOf("LIVE_LOG_FORMAT", c.LogFormat, `want "json", "console", or empty to pick by terminal`, FormatAuto, FormatJSON, FormatConsole)

	c.validateRetry(v)
	c.validateIngest(v)
	return v.err()
}

// validateNATS checks the connection and authentication settings.
func (c Config) validateNATS(v *checker) {
	if c.NATSURL != "" {
		v.natsURLs(c.NATSURL)
	}

	connection := []string{"LIVE_NATS_CREDS", "LIVE_NATS_NKEY", "LIVE_NATS_TOKEN", "LIVE_NATS_USER",
		"LIVE_NATS_PASSWORD", "LIVE_NATS_TLS_CA", "LIVE_NATS_TLS_CERT", "LIVE_NATS_TLS_KEY"}
	if c.Embedded() {
		// Credentials without a server to present them to are a deployment
		// mistake: the worker would quietly run its own empty server.
		for _, env := range connection {
			if v.value(env) != "" {
				v.fail(env, "needs LIVE_NATS_URL: the embedded server takes no credentials")
			}
		}
		return
	}

	auth := []string{"LIVE_NATS_CREDS", "LIVE_NATS_NKEY", "LIVE_NATS_TOKEN", "LIVE_NATS_USER"}
	var first string
	for _, env := range auth {
		switch {
		case v.value(env) == "":
		case first == "":
			first = env
		default:
			v.fail(env, "conflicts with %s: set only one of %s", first, strings.Join(auth, ", "))
		}
	}
	if c.NATSPassword != "" && c.NATSUser == "" {
		v.fail("LIVE_NATS_PASSWORD", "needs LIVE_NATS_USER")
	}
	switch {
	case c.NATSTLSCert != "" && c.NATSTLSKey == "":
		v.fail("LIVE_NATS_TLS_KEY", "required with LIVE_NATS_TLS_CERT")
	case c.NATSTLSKey != "" && c.NATSTLSCert == "":
		v.fail("LIVE_NATS_TLS_CERT", "required with LIVE_NATS_TLS_KEY")
	}
	for _, env := range []string{"LIVE_NATS_CREDS", "LIVE_NATS_NKEY", "LIVE_NATS_TLS_CA", "LIVE_NATS_TLS_CERT", "LIVE_NATS_TLS_KEY"} {
		v.file(env)
	}
}

// validateEmbeddedAuth checks the embedded server's authentication: a token or a
// user and password, and one of them whenever the server is reachable from other
// hosts, where anyone could otherwise publish to readers' pages or read the DLQ.
func (c Config) validateEmbeddedAuth(v *checker) {
	own := []string{"LIVE_EMBEDDED_TOKEN", "LIVE_EMBEDDED_USER", "LIVE_EMBEDDED_PASSWORD"}
	if !c.Embedded() {
		for _, env := range own {
			if v.value(env) != "" {
				v.fail(env, "is for the embedded server, which does not run with LIVE_NATS_URL set (use LIVE_NATS_TOKEN or LIVE_NATS_USER/LIVE_NATS_PASSWORD)")
			}
		}
		return
	}
	switch {
	case c.EmbeddedToken != "" && c.EmbeddedUser != "":
		v.fail("LIVE_EMBEDDED_USER", "conflicts with LIVE_EMBEDDED_TOKEN: set a token, or a user and password")
	case c.EmbeddedUser != "" && c.EmbeddedPassword == "":
		v.fail("LIVE_EMBEDDED_PASSWORD", "required with LIVE_EMBEDDED_USER")
	case c.EmbeddedPassword != "" && c.EmbeddedUser == "":
		v.fail("LIVE_EMBEDDED_USER", "required with LIVE_EMBEDDED_PASSWORD")
	}
	if _, _, err := net.SplitHostPort(c.EmbeddedListen); err == nil && !c.EmbeddedAuth() && !broker.Loopback(c.EmbeddedListen) {
		v.fail("LIVE_EMBEDDED_LISTEN", "%s", broker.NoAuthReason)
	}
}

// natsURLs requires comma-separated server addresses; nats.go adds the
// nats:// scheme to those without one.
func (v *checker) natsURLs(list string) {
	for _, u := range strings.Split(list, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			v.fail("LIVE_NATS_URL", "want comma-separated URLs such as nats://nats-1:4222,nats://nats-2:4222")
			return
		}
		if strings.Contains(u, "://") {
			if p, err := url.Parse(u); err != nil || p.Host == "" {
				v.fail("LIVE_NATS_URL", "%q is not a URL such as nats://nats:4222", hideUserinfo(u))
				return
			}
		}
	}
}

// validateProvider checks LIVE_PROVIDER and the chosen provider's settings.
func (c Config) validateProvider(v *checker) {
	names := Providers()
	quoted := make([]string, len(names))
	for i, p := range names {
		quoted[i] = strconv.Quote(p)
	}
	p, ok := lookupProvider(c.Provider)
	if !ok {
		v.fail("LIVE_PROVIDER", "want one of %s", strings.Join(quoted, ", "))
		return
	}
	// The provider's own validator holds the rules (publish), so that start-up and
	// the provider constructor cannot disagree; its errors name the settings.
	if p.validate != nil {
		v.adopt(p.validate(c))
	}
}

// validateRetry checks the backoff bounds.
func (c Config) validateRetry(v *checker) {
	r := c.Retry
	if r.Initial <= 0 {
		v.fail("LIVE_RETRY_INITIAL", "want a positive duration such as 100ms")
	}
	if r.Max < r.Initial || r.Max <= 0 {
		v.fail("LIVE_RETRY_MAX", "want at least LIVE_RETRY_INITIAL=%s", formatDuration(r.Initial))
	}
	if r.MaxAttempts < 0 {
		v.fail("LIVE_RETRY_MAX_ATTEMPTS", "want 0 (unlimited within LIVE_RETRY_MAX_ELAPSED) or more")
	}
	if r.MaxElapsed <= 0 {
		v.fail("LIVE_RETRY_MAX_ELAPSED", "want a positive duration such as 5m")
	}
}
