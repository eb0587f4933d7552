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
// Every setting is declared once: the worker's own in table() (settings.go), each
// provider's beside its configuration in internal/publish (PusherSettings,
// AblySettings, PieSocketSettings), composed by table(). LoadEnv, Bind, Settings,
// Validate's messages and the redacted renderings are all driven by that table.
//
// The files: config.go the Config and its defaults; settings.go the table;
// provider.go the providers (names, settings, checks); load.go reading the
// environment and binding flags; validate.go the checks, and checker.go what
// they are made of; render.go the redacted renderings and masking; unknown.go
// misspelt variables; ingest.go the ingest's checks and secret.
package config

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/liverelay/liverelay/internal/publish"
)

// Log formats accepted by LIVE_LOG_FORMAT; FormatAuto picks one at start-up.
const (
	FormatAuto    = ""
	FormatJSON    = "json"
	FormatConsole = "console"
)

// SyncAlways is the LIVE_EMBEDDED_SYNC value that makes the embedded server
// fsync every write.
const SyncAlways = "always"

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
