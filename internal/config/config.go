// Package config holds every setting of the `worker run` command: their
// defaults, how they are read from the environment and from flags, and how
// they are checked.
//
// Precedence is default < environment < flag:
//
//	cfg := config.Default()
//	if err := cfg.LoadEnv(os.LookupEnv); err != nil { ... }
//	cfg.Bind(fs)
//	if err := fs.Parse(args); err != nil { ... }
//	if err := cfg.Validate(); err != nil { ... }
//
// Every setting is declared once: the worker's own in table(), each provider's
// beside its configuration in internal/publish (PusherSettings, AblySettings,
// PieSocketSettings), composed by table(). LoadEnv, Bind, Settings, Validate's
// messages and the redacted renderings are all driven by that table.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"

	"github.com/liverelay/liverelay/internal/publish"
)

// Provider names accepted by LIVE_PROVIDER.
const (
	ProviderStdout = "stdout"
	ProviderPusher = "pusher"
	// ProviderAbly publishes to Ably's REST API.
	ProviderAbly = "ably"
	// ProviderPieSocket publishes to PieSocket's publish API.
	ProviderPieSocket = "piesocket"
)

// providers lists the accepted values of LIVE_PROVIDER. A new provider is one
// more entry here, its settings table composed in table(), its Validate called
// by validateProvider and its constructor by the worker.
var providers = []string{ProviderStdout, ProviderPusher, ProviderAbly, ProviderPieSocket}

// Providers returns the accepted values of LIVE_PROVIDER.
func Providers() []string { return slices.Clone(providers) }

// Log formats accepted by LIVE_LOG_FORMAT; FormatAuto picks one at start-up.
const (
	FormatAuto    = ""
	FormatJSON    = "json"
	FormatConsole = "console"
)

// SyncAlways is the LIVE_EMBEDDED_SYNC value that makes the embedded server
// fsync every write.
const SyncAlways = "always"

const redactedValue = "***"

// Config is the configuration of `worker run`.
type Config struct {
	// NATSURL is the NATS server to connect to (comma-separated for a
	// cluster). Empty runs an embedded JetStream server instead.
	NATSURL      string
	NATSCreds    string // path of a .creds file (JWT + nkey seed)
	NATSNKey     string // path of an nkey seed file
	NATSToken    string // secret
	NATSUser     string
	NATSPassword string // secret
	NATSTLSCA    string // path of a PEM CA bundle
	NATSTLSCert  string // path of a PEM client certificate
	NATSTLSKey   string // path of the client certificate's PEM key

	DataDir        string // JetStream storage of the embedded server
	EmbeddedListen string // host:port of the embedded server
	EmbeddedSync   string // "always" or an fsync interval such as "2m"
	// Authentication the embedded server requires of every client, the worker's own
	// connection included: a token, or a user and password. Required when it listens
	// beyond loopback.
	EmbeddedToken    string // secret
	EmbeddedUser     string
	EmbeddedPassword string // secret

	SubjectPrefix   string // events arrive on <SubjectPrefix>.<token>
	Stream          string
	DLQStream       string
	DLQPrefix       string // dead letters are written to <DLQPrefix>.<token>
	DLQMaxAge       time.Duration
	Replicas        int
	Partitions      int
	DuplicateWindow time.Duration
	EventsMaxAge    time.Duration // how long the event stream keeps events, acked or not
	FenceBucket     string        // key-value bucket of published revisions
	FenceTTL        time.Duration // how long a post's published revision is remembered

	// Provider names the provider; each provider's settings are declared by
	// publish (PusherSettings, …), their Timeout is ProviderTimeout (see
	// PusherConfig, …).
	Provider        string
	Pusher          publish.PusherConfig
	Ably            publish.AblyConfig
	PieSocket       publish.PieSocketConfig
	ProviderTimeout time.Duration

	BatchWindow        time.Duration
	BatchMaxEvents     int
	BatchMaxBytes      int
	PublishConcurrency int
	MaxAckPending      int
	AckWait            time.Duration
	MaxDeliver         int // -1 is unlimited
	ShutdownTimeout    time.Duration

	WorkerName string // how this worker appears in logs, metrics and `worker status`; empty: host name and pid

	HTTPAddr  string // empty disables the health and metrics server
	Pprof     bool   // serve /debug/pprof/ on HTTPAddr
	LogLevel  string
	LogFormat string // "", "json" or "console"; see ResolvedLogFormat

	Retry Retry

	Ingest Ingest
}

// Ingest holds the settings of the Pusher-compatible HTTP ingest.
type Ingest struct {
	Addr       string // empty disables the ingest
	AppID      string
	Key        string
	Secret     string // secret
	SecretFile string // file holding the secret, instead of Secret
	EventName  string // the only event name accepted
	MaxBytes   int    // largest data of one event
	TLSCert    string // PEM certificate; with TLSKey the ingest speaks HTTPS
	TLSKey     string
}

// Retry bounds how a failed provider publish is retried.
type Retry struct {
	Initial     time.Duration // first wait
	Max         time.Duration // cap of one wait
	MaxAttempts int           // 0 is unlimited within MaxElapsed
	MaxElapsed  time.Duration // give up after this long
}

// Default returns the configuration used when nothing is set: an embedded
// JetStream server and the stdout provider.
func Default() Config {
	return Config{
		DataDir:            "./data",
		EmbeddedListen:     "127.0.0.1:4222",
		EmbeddedSync:       SyncAlways,
		SubjectPrefix:      "live.events",
		Stream:             "LIVE_EVENTS",
		DLQStream:          "LIVE_DLQ",
		DLQPrefix:          "live.dlq",
		Replicas:           1,
		Partitions:         0, // the stream's count, or broker.DefaultPartitions for a new stream
		DuplicateWindow:    2 * time.Minute,
		EventsMaxAge:       7 * 24 * time.Hour,
		FenceBucket:        "LIVE_REVISIONS",
		DLQMaxAge:          30 * 24 * time.Hour,
		FenceTTL:           30 * 24 * time.Hour,
		Provider:           ProviderStdout,
		Pusher:             publish.DefaultPusherConfig(),
		Ably:               publish.DefaultAblyConfig(),
		PieSocket:          publish.DefaultPieSocketConfig(),
		ProviderTimeout:    5 * time.Second,
		BatchWindow:        25 * time.Millisecond,
		BatchMaxEvents:     500,
		BatchMaxBytes:      1 << 20,
		PublishConcurrency: 16,
		MaxAckPending:      10000,
		AckWait:            5 * time.Second,
		MaxDeliver:         20,
		ShutdownTimeout:    20 * time.Second,
		HTTPAddr:           ":9090",
		LogLevel:           "info",
		LogFormat:          FormatAuto,
		Retry: Retry{
			Initial:     100 * time.Millisecond,
			Max:         10 * time.Second,
			MaxAttempts: 10,
			MaxElapsed:  5 * time.Minute,
		},
		Ingest: Ingest{EventName: "live-page-update", MaxBytes: 256 << 10},
	}
}

// ResolvedWorkerName is WorkerName, or the host name and process id when it is empty.
func (c Config) ResolvedWorkerName() string {
	if c.WorkerName != "" {
		return c.WorkerName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// Embedded reports whether the worker runs its own JetStream server.
func (c Config) Embedded() bool { return c.NATSURL == "" }

// EmbeddedAuth reports whether clients of the embedded server must authenticate.
func (c Config) EmbeddedAuth() bool { return c.EmbeddedToken != "" || c.EmbeddedUser != "" }

// EmbeddedSyncPolicy translates EmbeddedSync into nats-server's
// SyncAlways/SyncInterval options. Call it on a validated Config.
func (c Config) EmbeddedSyncPolicy() (always bool, interval time.Duration) {
	if strings.EqualFold(c.EmbeddedSync, SyncAlways) {
		return true, 0
	}
	d, _ := time.ParseDuration(c.EmbeddedSync)
	return false, d
}

// ResolvedLogFormat returns "json" or "console": LogFormat when set, else
// console on a terminal and json otherwise.
func (c Config) ResolvedLogFormat(isTerminal bool) string {
	switch {
	case c.LogFormat != FormatAuto:
		return c.LogFormat
	case isTerminal:
		return FormatConsole
	default:
		return FormatJSON
	}
}

// Redacted returns a copy whose secrets, when set, read "***", as do
// credentials embedded in LIVE_NATS_URL.
func (c Config) Redacted() Config {
	for _, s := range settings() {
		if p, ok := s.field(&c).(*string); ok && s.mask != nil {
			*p = s.mask(*p)
		}
	}
	return c
}

// String renders every setting as flag=value, secrets redacted, so a Config
// printed by mistake leaks nothing.
func (c Config) String() string {
	var b strings.Builder
	for i, s := range settings() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", s.flag(), s.display(&c))
	}
	return b.String()
}

// MarshalLogObject logs every setting under its flag name, secrets
// redacted: zap.Object("config", cfg) and zap.Any("config", cfg) are safe.
func (c Config) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, s := range settings() {
		switch p := s.field(&c).(type) {
		case *string:
			enc.AddString(s.flag(), s.display(&c))
		case *int:
			enc.AddInt(s.flag(), *p)
		case *bool:
			enc.AddBool(s.flag(), *p)
		case *time.Duration:
			enc.AddString(s.flag(), formatDuration(*p))
		}
	}
	return nil
}

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

// LoadEnv overrides c with the variables lookup finds (os.LookupEnv in
// production). A string variable set to "" sets the setting to "" (so
// LIVE_HTTP_ADDR= disables the server); a number, duration or boolean set to
// "" keeps its current value. A secret may instead come from the file named by
// <NAME>_FILE, its trailing white space (the newline editors add) removed;
// setting both is an error, as is a file that cannot be read. Every problem is
// reported.
func (c *Config) LoadEnv(lookup func(string) (string, bool)) error {
	var errs []error
	for _, s := range settings() {
		raw, ok := lookup(s.env)
		if s.secret {
			if path, set := lookup(s.fileEnv()); set && path != "" {
				if ok {
					errs = append(errs, &FieldError{Env: s.fileEnv(), Value: path,
						Reason: fmt.Sprintf("%s is set too: set the secret or the file that holds it, not both", s.env)})
					continue
				}
				b, err := os.ReadFile(path)
				if err != nil {
					var pe *fs.PathError
					if errors.As(err, &pe) {
						err = pe.Err // the path is in the message already
					}
					errs = append(errs, &FieldError{Env: s.fileEnv(), Value: path,
						Reason: fmt.Sprintf("cannot read the file holding %s: %v", s.env, err)})
					continue
				}
				raw, ok = strings.TrimRight(string(b), " \t\r\n"), true
			}
		}
		if !ok {
			continue
		}
		if err := s.set(c, raw); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Bind registers one flag per setting on fs, defaulting to the value already
// in c, so flags override the environment.
func (c *Config) Bind(fs *pflag.FlagSet) {
	for _, s := range settings() {
		c.bind(fs, s)
	}
}

// BindSome registers the flags of the settings named by their environment
// variables (LIVE_NATS_URL, …), as Bind does: the operator commands take the
// settings they use, under the same names as `worker run`. An unknown name panics.
func (c *Config) BindSome(fs *pflag.FlagSet, envs ...string) {
	for _, env := range envs {
		i := slices.IndexFunc(settings(), func(s spec) bool { return s.env == env })
		if i < 0 {
			panic(fmt.Sprintf("config: no setting %s", env))
		}
		c.bind(fs, settings()[i])
	}
}

func (c *Config) bind(fs *pflag.FlagSet, s spec) {
	usage := fmt.Sprintf("%s [$%s]", s.help, s.env)
	switch p := s.field(c).(type) {
	case *string:
		if s.mask != nil {
			fs.Var(&maskedValue{p: p, mask: s.mask}, s.flag(), usage)
			return
		}
		fs.StringVar(p, s.flag(), *p, usage)
	case *int:
		fs.IntVar(p, s.flag(), *p, usage)
	case *bool:
		fs.BoolVar(p, s.flag(), *p, usage)
	case *time.Duration:
		fs.DurationVar(p, s.flag(), *p, usage)
	default:
		panic(fmt.Sprintf("config: setting %s has unsupported type %T", s.env, p))
	}
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

// set parses raw into the field, naming the variable on failure.
func (s spec) set(c *Config, raw string) error {
	trimmed := strings.TrimSpace(raw)
	switch p := s.field(c).(type) {
	case *string:
		*p = raw
		return nil
	case *int:
		if trimmed == "" {
			return nil
		}
		n, err := strconv.Atoi(trimmed)
		if err != nil {
			return s.invalid(raw, "want a whole number such as 16")
		}
		*p = n
	case *bool:
		if trimmed == "" {
			return nil
		}
		b, err := strconv.ParseBool(trimmed)
		if err != nil {
			return s.invalid(raw, "want true or false")
		}
		*p = b
	case *time.Duration:
		if trimmed == "" {
			return nil
		}
		d, err := time.ParseDuration(trimmed)
		if err != nil {
			return s.invalid(raw, "want a duration such as 50ms")
		}
		*p = d
	}
	return nil
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

// table lists the settings: the worker's own here, each provider's from its
// table in publish, between LIVE_PROVIDER and LIVE_PROVIDER_TIMEOUT.
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
		{env: "LIVE_PROVIDER", help: "where updates are published: " + strings.Join(providers, ", "), field: func(c *Config) any { return &c.Provider }},
	}
	specs = append(specs, providerSpecs(publish.PusherSettings(), func(c *Config) *publish.PusherConfig { return &c.Pusher })...)
	specs = append(specs, providerSpecs(publish.AblySettings(), func(c *Config) *publish.AblyConfig { return &c.Ably })...)
	specs = append(specs, providerSpecs(publish.PieSocketSettings(), func(c *Config) *publish.PieSocketConfig { return &c.PieSocket })...)
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

// providerSpecs turns a provider's settings, declared by publish, into specs
// of the field at(c) of a Config.
func providerSpecs[P any](settings []publish.Setting[P], at func(*Config) *P) []spec {
	specs := make([]spec, 0, len(settings))
	for _, s := range settings {
		sp := spec{env: s.Env, help: s.Help, secret: s.Secret, field: func(c *Config) any { return s.Field(at(c)) }}
		if s.Address {
			sp.mask = hideUserinfo
		}
		specs = append(specs, sp)
	}
	return specs
}

// maskedValue is a pflag.Value whose String never shows the secret, so
// --help and FlagSet.VisitAll print "***" instead.
type maskedValue struct {
	p    *string
	mask func(string) string
}

func (v *maskedValue) Set(s string) error { *v.p = s; return nil }

// Type names the value's kind in --help.
func (v *maskedValue) Type() string { return "string" }

func (v *maskedValue) String() string {
	if v == nil || v.p == nil {
		return "" // the zero value PrintDefaults compares against
	}
	return v.mask(*v.p)
}

// hide masks a whole secret, leaving an unset one empty.
func hide(s string) string {
	if s == "" {
		return ""
	}
	return redactedValue
}

// hideUserinfo masks the credentials of each URL (or host:port) in a
// comma-separated list: nats://user:pass@host and nats://token@host become
// nats://***@host, user:pass@host:1 becomes ***@host:1.
func hideUserinfo(list string) string {
	urls := strings.Split(list, ",")
	for i, u := range urls {
		at := strings.LastIndex(u, "@")
		if at < 0 {
			continue
		}
		start := 0
		if k := strings.Index(u, "://"); k >= 0 && k < at {
			start = k + len("://")
		}
		urls[i] = u[:start] + redactedValue + u[at:]
	}
	return strings.Join(urls, ",")
}

// formatDuration is time.Duration.String without trailing zero units:
// 2m rather than 2m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
