package config

import (
	"strconv"
	"strings"
	"time"
)

// Setting describes one setting for --help and the README.
type Setting struct {
	Env     string // environment variable, e.g. LIVE_BATCH_WINDOW
	Flag    string // flag name without dashes, e.g. batch-window
	Default string // default value as it would be written in the environment; never a secret
	Help    string
	Secret  bool // a credential: masked everywhere, and also read from the file named by Env+"_FILE"
}

// Settings lists every setting in a stable order, with its default.
func Settings() []Setting {
	def := Default()
	specs := settings()
	out := make([]Setting, 0, len(specs))
	for _, s := range specs {
		out = append(out, Setting{Env: s.env, Flag: s.flag(), Default: s.display(&def), Help: s.help, Secret: s.secret})
	}
	return out
}

// Lookup returns the setting of the environment variable env.
func Lookup(env string) (Setting, bool) {
	for _, s := range Settings() {
		if s.Env == env {
			return s, true
		}
	}
	return Setting{}, false
}

// spec declares one setting.
type spec struct {
	env  string
	help string
	// secret marks a credential: it is masked in every rendering, and it can also be
	// read from the file named by <env>_FILE (Docker and Kubernetes secrets).
	secret bool
	mask   func(string) string // hides secrets from every rendering; nil shows the value
	field  func(*Config) any   // pointer to the field: *string, *int, *bool or *time.Duration
}

// fileSuffix turns a secret's variable into the one naming a file that holds it:
// PUSHER_APP_SECRET_FILE=/run/secrets/pusher-app-secret.
const fileSuffix = "_FILE"

// fileEnv is the variable naming the file of a secret setting.
func (s spec) fileEnv() string { return s.env + fileSuffix }

// flag derives the flag name: LIVE_BATCH_WINDOW → batch-window,
// PUSHER_APP_ID → pusher-app-id.
func (s spec) flag() string {
	name := strings.TrimPrefix(s.env, "LIVE_")
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// format renders the field as it would be written in the environment.
func (s spec) format(c *Config) string {
	switch p := s.field(c).(type) {
	case *string:
		return *p
	case *int:
		return strconv.Itoa(*p)
	case *bool:
		return strconv.FormatBool(*p)
	case *time.Duration:
		return formatDuration(*p)
	}
	return ""
}

// display is format with secrets redacted.
func (s spec) display(c *Config) string {
	return s.redact(s.format(c))
}

// redact hides what mask hides.
func (s spec) redact(v string) string {
	if s.mask == nil {
		return v
	}
	return s.mask(v)
}

func (s spec) invalid(raw, reason string) *FieldError {
	return &FieldError{Env: s.env, Value: s.redact(raw), Reason: reason}
}

// settings is the single declaration of every setting, in the order they are
// documented. A secret is masked like any setting with a mask.
func settings() []spec {
	specs := table()
	for i := range specs {
		if specs[i].secret {
			specs[i].mask = hide
		}
	}
	return specs
}

// table lists the settings: the worker's own here, each provider's (providers)
// from its table in publish, between LIVE_PROVIDER and LIVE_PROVIDER_TIMEOUT.
func table() []spec {
	specs := []spec{
		{env: "LIVE_NATS_URL", help: "NATS server URL(s), comma-separated; empty runs an embedded JetStream server", mask: hideUserinfo, field: func(c *Config) any { return &c.NATSURL }},
		{env: "LIVE_NATS_CREDS", help: "NATS credentials (.creds) file", field: func(c *Config) any { return &c.NATSCreds }},
		{env: "LIVE_NATS_NKEY", help: "NATS nkey seed file", field: func(c *Config) any { return &c.NATSNKey }},
		{env: "LIVE_NATS_TOKEN", help: "NATS token (prefer the environment: flags show in ps)", secret: true, field: func(c *Config) any { return &c.NATSToken }},
		{env: "LIVE_NATS_USER", help: "NATS user name", field: func(c *Config) any { return &c.NATSUser }},
		{env: "LIVE_NATS_PASSWORD", help: "NATS password, with LIVE_NATS_USER (prefer the environment: flags show in ps)", secret: true, field: func(c *Config) any { return &c.NATSPassword }},
		{env: "LIVE_NATS_TLS_CA", help: "PEM CA bundle to verify the NATS server", field: func(c *Config) any { return &c.NATSTLSCA }},
		{env: "LIVE_NATS_TLS_CERT", help: "PEM client certificate for NATS (with LIVE_NATS_TLS_KEY)", field: func(c *Config) any { return &c.NATSTLSCert }},
		{env: "LIVE_NATS_TLS_KEY", help: "PEM key of the NATS client certificate", field: func(c *Config) any { return &c.NATSTLSKey }},
		{env: "LIVE_DATA_DIR", help: "storage folder of the embedded JetStream server", field: func(c *Config) any { return &c.DataDir }},
		{env: "LIVE_EMBEDDED_LISTEN", help: "host:port the embedded NATS server listens on; other than loopback, it needs LIVE_EMBEDDED_TOKEN or LIVE_EMBEDDED_USER/LIVE_EMBEDDED_PASSWORD", field: func(c *Config) any { return &c.EmbeddedListen }},
		{env: "LIVE_EMBEDDED_SYNC", help: `embedded server fsync policy: "always", or an interval such as 2m (faster, may lose acknowledged writes on an OS crash)`, field: func(c *Config) any { return &c.EmbeddedSync }},
		{env: "LIVE_EMBEDDED_TOKEN", help: "token every client of the embedded server must present (required, or LIVE_EMBEDDED_USER and LIVE_EMBEDDED_PASSWORD, when LIVE_EMBEDDED_LISTEN is not loopback)", secret: true, field: func(c *Config) any { return &c.EmbeddedToken }},
		{env: "LIVE_EMBEDDED_USER", help: "user name every client of the embedded server must present, with LIVE_EMBEDDED_PASSWORD", field: func(c *Config) any { return &c.EmbeddedUser }},
		{env: "LIVE_EMBEDDED_PASSWORD", help: "password of LIVE_EMBEDDED_USER", secret: true, field: func(c *Config) any { return &c.EmbeddedPassword }},
		{env: "LIVE_SUBJECT_PREFIX", help: "events are read from <prefix>.<channel token>", field: func(c *Config) any { return &c.SubjectPrefix }},
		{env: "LIVE_STREAM", help: "JetStream stream of events", field: func(c *Config) any { return &c.Stream }},
		{env: "LIVE_DLQ_STREAM", help: "JetStream stream of dead letters", field: func(c *Config) any { return &c.DLQStream }},
		{env: "LIVE_DLQ_PREFIX", help: "dead letters are written to <prefix>.<channel token>", field: func(c *Config) any { return &c.DLQPrefix }},
		{env: "LIVE_STREAM_REPLICAS", help: "replicas of the streams (1 to 5; 3 in production clusters)", field: func(c *Config) any { return &c.Replicas }},
		{env: "LIVE_PARTITIONS", help: "channel partitions, each consumed in order by one worker; 0 takes the stream's count, or 32 for a new stream", field: func(c *Config) any { return &c.Partitions }},
		{env: "LIVE_DUPLICATE_WINDOW", help: "JetStream de-duplication window of the event stream", field: func(c *Config) any { return &c.DuplicateWindow }},
		{env: "LIVE_EVENTS_MAX_AGE", help: "how long the event stream keeps events, delivered or not: workers down for longer lose events; each channel seen within it costs the NATS server about 0.3 KB of memory", field: func(c *Config) any { return &c.EventsMaxAge }},
		{env: "LIVE_DLQ_MAX_AGE", help: "how long dead letters are kept; 0 keeps them until replayed or purged", field: func(c *Config) any { return &c.DLQMaxAge }},
		{env: "LIVE_FENCE_BUCKET", help: "JetStream key-value bucket of the newest published revision per post (the no-rollback fence)", field: func(c *Config) any { return &c.FenceBucket }},
		{env: "LIVE_FENCE_TTL", help: "how long a post's published revision is remembered; replays of older letters are not fenced", field: func(c *Config) any { return &c.FenceTTL }},
		{env: "LIVE_PROVIDER", help: "where updates are published: " + strings.Join(Providers(), ", "), field: func(c *Config) any { return &c.Provider }},
	}
	for _, p := range providers() {
		if p.settings != nil {
			specs = append(specs, p.settings()...)
		}
	}
	return append(specs, []spec{
		{env: "LIVE_PROVIDER_TIMEOUT", help: "timeout of one provider request", field: func(c *Config) any { return &c.ProviderTimeout }},
		{env: "LIVE_BATCH_WINDOW", help: "how long a channel's events are merged before publishing; 0 publishes as soon as the channel is free", field: func(c *Config) any { return &c.BatchWindow }},
		{env: "LIVE_BATCH_MAX_EVENTS", help: "events in one merged update before it is flushed early", field: func(c *Config) any { return &c.BatchMaxEvents }},
		{env: "LIVE_BATCH_MAX_BYTES", help: "bytes of one merged update before it is flushed early", field: func(c *Config) any { return &c.BatchMaxBytes }},
		{env: "LIVE_PUBLISH_CONCURRENCY", help: "provider requests in flight", field: func(c *Config) any { return &c.PublishConcurrency }},
		{env: "LIVE_MAX_ACK_PENDING", help: "unacknowledged events one worker holds, split evenly over the partitions", field: func(c *Config) any { return &c.MaxAckPending }},
		{env: "LIVE_ACK_WAIT", help: "JetStream ack wait before an event is redelivered; a dead worker's partitions move after this plus 1.5 s", field: func(c *Config) any { return &c.AckWait }},
		{env: "LIVE_MAX_DELIVER", help: "deliveries of an event before it is dead-lettered; -1 is unlimited", field: func(c *Config) any { return &c.MaxDeliver }},
		{env: "LIVE_SHUTDOWN_TIMEOUT", help: "time allowed to flush pending updates on shutdown", field: func(c *Config) any { return &c.ShutdownTimeout }},
		{env: "LIVE_WORKER_NAME", help: "this worker's name in logs, metrics and worker status; empty is the host name and process id", field: func(c *Config) any { return &c.WorkerName }},
		{env: "LIVE_HTTP_ADDR", help: "address of /healthz, /readyz and /metrics; empty disables them", field: func(c *Config) any { return &c.HTTPAddr }},
		{env: "LIVE_PPROF", help: "serve Go profiles under /debug/pprof/ on LIVE_HTTP_ADDR, never the command line (keep that address private)", field: func(c *Config) any { return &c.Pprof }},
		{env: "LIVE_LOG_LEVEL", help: "debug, info, warn or error", field: func(c *Config) any { return &c.LogLevel }},
		{env: "LIVE_LOG_FORMAT", help: "json or console; empty picks console on a terminal, json otherwise", field: func(c *Config) any { return &c.LogFormat }},
		{env: "LIVE_RETRY_INITIAL", help: "first wait before retrying a failed publish", field: func(c *Config) any { return &c.Retry.Initial }},
		{env: "LIVE_RETRY_MAX", help: "longest single wait between retries", field: func(c *Config) any { return &c.Retry.Max }},
		{env: "LIVE_RETRY_MAX_ATTEMPTS", help: "attempts before dead-lettering; 0 is unlimited within LIVE_RETRY_MAX_ELAPSED", field: func(c *Config) any { return &c.Retry.MaxAttempts }},
		{env: "LIVE_RETRY_MAX_ELAPSED", help: "time spent retrying before dead-lettering", field: func(c *Config) any { return &c.Retry.MaxElapsed }},
		{env: "LIVE_INGEST_ADDR", help: "host:port of the Pusher-compatible HTTP ingest (POST /apps/<app id>/events and /batch_events); empty disables it", field: func(c *Config) any { return &c.Ingest.Addr }},
		{env: "LIVE_INGEST_APP_ID", help: "app id the CMS's Pusher client is given for the ingest", field: func(c *Config) any { return &c.Ingest.AppID }},
		{env: "LIVE_INGEST_KEY", help: "app key the CMS's Pusher client is given for the ingest", field: func(c *Config) any { return &c.Ingest.Key }},
		{env: "LIVE_INGEST_SECRET", help: "app secret the CMS's Pusher client signs with (prefer the environment or LIVE_INGEST_SECRET_FILE: flags show in ps)", mask: hide, field: func(c *Config) any { return &c.Ingest.Secret }},
		{env: "LIVE_INGEST_SECRET_FILE", help: "file holding the ingest's app secret, instead of LIVE_INGEST_SECRET", field: func(c *Config) any { return &c.Ingest.SecretFile }},
		{env: "LIVE_INGEST_EVENT_NAME", help: "the only event name the ingest accepts", field: func(c *Config) any { return &c.Ingest.EventName }},
		{env: "LIVE_INGEST_MAX_BYTES", help: "largest data of one ingested event, in bytes (Pusher's own limit is 10240; liverelay splits larger updates); larger ones are refused with 413", field: func(c *Config) any { return &c.Ingest.MaxBytes }},
		{env: "LIVE_INGEST_TLS_CERT", help: "PEM certificate (chain) of the ingest; with LIVE_INGEST_TLS_KEY it serves HTTPS", field: func(c *Config) any { return &c.Ingest.TLSCert }},
		{env: "LIVE_INGEST_TLS_KEY", help: "PEM key of LIVE_INGEST_TLS_CERT", field: func(c *Config) any { return &c.Ingest.TLSKey }},
	}...)
}
