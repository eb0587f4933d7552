package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/publish"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "creds", "x")
	missing := filepath.Join(dir, "missing")
	remote := func(c *Config) { c.NATSURL = "nats://nats:4222" }
	pusher := func(c *Config) {
		c.Provider = "pusher"
		c.Pusher = publish.PusherConfig{AppID: "1", Key: "k", Secret: "s", Cluster: "eu", Secure: true}
	}

	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // Env of every problem, in report order; nil means valid
	}{
		// NATS connection and authentication.
		{"remote url", func(c *Config) { remote(c) }, nil},
		{"url list", func(c *Config) { c.NATSURL = "nats://a:4222, nats://b:4222,c:4222" }, nil},
		{"url list with a hole", func(c *Config) { c.NATSURL = "nats://a:4222,,nats://b:4222" }, []string{"LIVE_NATS_URL"}},
		{"url without host", func(c *Config) { c.NATSURL = "nats://" }, []string{"LIVE_NATS_URL"}},
		{"creds", func(c *Config) { remote(c); c.NATSCreds = file }, nil},
		{"creds with tls", func(c *Config) {
			remote(c)
			c.NATSCreds, c.NATSTLSCA, c.NATSTLSCert, c.NATSTLSKey = file, file, file, file
		}, nil},
		{"nkey", func(c *Config) { remote(c); c.NATSNKey = file }, nil},
		{"token", func(c *Config) { remote(c); c.NATSToken = "t" }, nil},
		{"user and password", func(c *Config) { remote(c); c.NATSUser, c.NATSPassword = "u", "p" }, nil},
		{"creds and token", func(c *Config) { remote(c); c.NATSCreds, c.NATSToken = file, "t" }, []string{"LIVE_NATS_TOKEN"}},
		{"nkey and user", func(c *Config) { remote(c); c.NATSNKey, c.NATSUser = file, "u" }, []string{"LIVE_NATS_USER"}},
		{"all four", func(c *Config) { remote(c); c.NATSCreds, c.NATSNKey, c.NATSToken, c.NATSUser = file, file, "t", "u" },
			[]string{"LIVE_NATS_NKEY", "LIVE_NATS_TOKEN", "LIVE_NATS_USER"}},
		{"password without user", func(c *Config) { remote(c); c.NATSPassword = "p" }, []string{"LIVE_NATS_PASSWORD"}},
		{"cert without key", func(c *Config) { remote(c); c.NATSTLSCert = file }, []string{"LIVE_NATS_TLS_KEY"}},
		{"key without cert", func(c *Config) { remote(c); c.NATSTLSKey = file }, []string{"LIVE_NATS_TLS_CERT"}},
		{"missing files", func(c *Config) {
			remote(c)
			c.NATSCreds, c.NATSTLSCA, c.NATSTLSCert, c.NATSTLSKey = missing, missing, missing, missing
		}, []string{"LIVE_NATS_CREDS", "LIVE_NATS_TLS_CA", "LIVE_NATS_TLS_CERT", "LIVE_NATS_TLS_KEY"}},
		{"missing nkey", func(c *Config) { remote(c); c.NATSNKey = missing }, []string{"LIVE_NATS_NKEY"}},
		{"directory as file", func(c *Config) { remote(c); c.NATSTLSCA = dir }, []string{"LIVE_NATS_TLS_CA"}},
		{"credentials for the embedded server", func(c *Config) { c.NATSToken, c.NATSTLSCA = "t", file },
			[]string{"LIVE_NATS_TOKEN", "LIVE_NATS_TLS_CA"}},

		// Embedded server.
		{"no data dir", func(c *Config) { c.DataDir = "" }, []string{"LIVE_DATA_DIR"}},
		{"no data dir with remote nats", func(c *Config) { remote(c); c.DataDir = "" }, nil},
		{"listen any port", func(c *Config) { c.EmbeddedListen = "127.0.0.1:0" }, nil},
		{"listen on every interface without auth", func(c *Config) { c.EmbeddedListen = ":4222" }, []string{"LIVE_EMBEDDED_LISTEN"}},
		{"listen on 0.0.0.0 without auth", func(c *Config) { c.EmbeddedListen = "0.0.0.0:4222" }, []string{"LIVE_EMBEDDED_LISTEN"}},
		{"listen on a host name without auth", func(c *Config) { c.EmbeddedListen = "nats.internal:4222" }, []string{"LIVE_EMBEDDED_LISTEN"}},
		{"listen on localhost", func(c *Config) { c.EmbeddedListen = "localhost:4222" }, nil},
		{"listen on 0.0.0.0 with a token", func(c *Config) { c.EmbeddedListen, c.EmbeddedToken = "0.0.0.0:4222", "t" }, nil},
		{"listen on 0.0.0.0 with user and password", func(c *Config) {
			c.EmbeddedListen, c.EmbeddedUser, c.EmbeddedPassword = "0.0.0.0:4222", "u", "p"
		}, nil},
		{"embedded user without password", func(c *Config) { c.EmbeddedUser = "u" }, []string{"LIVE_EMBEDDED_PASSWORD"}},
		{"embedded password without user", func(c *Config) { c.EmbeddedPassword = "p" }, []string{"LIVE_EMBEDDED_USER"}},
		{"embedded token and user", func(c *Config) { c.EmbeddedToken, c.EmbeddedUser, c.EmbeddedPassword = "t", "u", "p" }, []string{"LIVE_EMBEDDED_USER"}},
		{"embedded token with a NATS URL", func(c *Config) { c.NATSURL, c.EmbeddedToken = "nats://n:4222", "t" }, []string{"LIVE_EMBEDDED_TOKEN"}},
		{"listen ipv6", func(c *Config) { c.EmbeddedListen = "[::1]:4222" }, nil},
		{"listen without port", func(c *Config) { c.EmbeddedListen = "127.0.0.1" }, []string{"LIVE_EMBEDDED_LISTEN"}},
		{"listen port too big", func(c *Config) { c.EmbeddedListen = "127.0.0.1:65536" }, []string{"LIVE_EMBEDDED_LISTEN"}},
		{"listen named port", func(c *Config) { c.EmbeddedListen = "127.0.0.1:nats" }, []string{"LIVE_EMBEDDED_LISTEN"}},
		{"sync interval", func(c *Config) { c.EmbeddedSync = "2m" }, nil},
		{"sync always any case", func(c *Config) { c.EmbeddedSync = "Always" }, nil},
		{"sync word", func(c *Config) { c.EmbeddedSync = "sometimes" }, []string{"LIVE_EMBEDDED_SYNC"}},
		{"sync zero", func(c *Config) { c.EmbeddedSync = "0s" }, []string{"LIVE_EMBEDDED_SYNC"}},

		// Subjects and streams.
		{"subject with wildcard", func(c *Config) { c.SubjectPrefix = "live.*" }, []string{"LIVE_SUBJECT_PREFIX"}},
		{"subject with tail wildcard", func(c *Config) { c.SubjectPrefix = "live.>" }, []string{"LIVE_SUBJECT_PREFIX"}},
		{"subject with empty token", func(c *Config) { c.SubjectPrefix = "live..events" }, []string{"LIVE_SUBJECT_PREFIX"}},
		{"subject with trailing dot", func(c *Config) { c.DLQPrefix = "live.dlq." }, []string{"LIVE_DLQ_PREFIX"}},
		{"subject with space", func(c *Config) { c.DLQPrefix = "live dlq" }, []string{"LIVE_DLQ_PREFIX"}},
		{"empty subject", func(c *Config) { c.SubjectPrefix = "" }, []string{"LIVE_SUBJECT_PREFIX"}},
		{"dlq inside events", func(c *Config) { c.DLQPrefix = "live.events.dlq" }, []string{"LIVE_DLQ_PREFIX"}},
		{"same prefixes", func(c *Config) { c.DLQPrefix = c.SubjectPrefix }, []string{"LIVE_DLQ_PREFIX"}},
		{"prefixes sharing letters", func(c *Config) { c.SubjectPrefix, c.DLQPrefix = "live.events", "live.eventsdlq" }, nil},
		{"stream name", func(c *Config) { c.Stream = "live-events_2" }, nil},
		{"stream name with dot", func(c *Config) { c.Stream = "LIVE.EVENTS" }, []string{"LIVE_STREAM"}},
		{"empty dlq stream", func(c *Config) { c.DLQStream = "" }, []string{"LIVE_DLQ_STREAM"}},
		{"same streams", func(c *Config) { c.DLQStream = c.Stream }, []string{"LIVE_DLQ_STREAM"}},
		{"replicas 3 on a cluster", func(c *Config) { remote(c); c.Replicas = 3 }, nil},
		{"replicas 3 embedded", func(c *Config) { c.Replicas = 3 }, []string{"LIVE_STREAM_REPLICAS"}},
		{"replicas 0", func(c *Config) { remote(c); c.Replicas = 0 }, []string{"LIVE_STREAM_REPLICAS"}},
		{"replicas 6", func(c *Config) { remote(c); c.Replicas = 6 }, []string{"LIVE_STREAM_REPLICAS"}},
		{"partitions bounds", func(c *Config) { c.Partitions = 1024 }, nil},
		{"partitions 0 takes the stream's", func(c *Config) { c.Partitions = 0 }, nil},
		{"partitions -1", func(c *Config) { c.Partitions = -1 }, []string{"LIVE_PARTITIONS"}},
		{"worker name with a control byte", func(c *Config) { c.WorkerName = "a\x1b[2Jb" }, []string{"LIVE_WORKER_NAME"}},
		{"partitions 1025", func(c *Config) { c.Partitions = 1025 }, []string{"LIVE_PARTITIONS"}},
		{"duplicate window short", func(c *Config) { c.DuplicateWindow = 999 * time.Millisecond }, []string{"LIVE_DUPLICATE_WINDOW"}},
		{"events max age 1h", func(c *Config) { c.EventsMaxAge = time.Hour }, nil},
		{"events max age short", func(c *Config) { c.EventsMaxAge = 59 * time.Minute }, []string{"LIVE_EVENTS_MAX_AGE"}},
		{"events max age 0", func(c *Config) { c.EventsMaxAge = 0 }, []string{"LIVE_EVENTS_MAX_AGE"}},
		{"events max age below the duplicate window", func(c *Config) { c.EventsMaxAge, c.DuplicateWindow = 2*time.Hour, 3*time.Hour }, []string{"LIVE_EVENTS_MAX_AGE"}},

		// Provider.
		{"pusher", pusher, nil},
		{"pusher with host only", func(c *Config) { pusher(c); c.Pusher.Cluster, c.Pusher.Host = "", "soketi:6001" }, nil},
		{"pusher host without port", func(c *Config) { pusher(c); c.Pusher.Host = "api.pusher.internal" }, nil},
		{"pusher host with scheme", func(c *Config) { pusher(c); c.Pusher.Host = "http://soketi:6001" }, []string{"PUSHER_HOST"}},
		{"pusher host bad port", func(c *Config) { pusher(c); c.Pusher.Host = "soketi:99999" }, []string{"PUSHER_HOST"}},
		{"pusher without credentials", func(c *Config) { c.Provider = "pusher" },
			[]string{"PUSHER_APP_ID", "PUSHER_APP_KEY", "PUSHER_APP_SECRET", "PUSHER_APP_CLUSTER"}},
		{"pusher settings ignored for stdout", func(c *Config) { c.Pusher.Host = "http://x" }, nil},
		{"unknown provider", func(c *Config) { c.Provider = "kafka" }, []string{"LIVE_PROVIDER"}},
		{"ably needs a key", func(c *Config) { c.Provider = "ably" }, []string{"ABLY_API_KEY"}},
		{"ably key shape", func(c *Config) { c.Provider = "ably"; c.Ably.APIKey = "nocolon" }, []string{"ABLY_API_KEY"}},
		{"ably ok", func(c *Config) { c.Provider = "ably"; c.Ably.APIKey = "app.key:secret" }, nil},
		{"ably plain http needs a host", func(c *Config) { c.Provider = "ably"; c.Ably.APIKey = "app.key:secret"; c.Ably.TLS = false }, []string{"ABLY_TLS"}},
		{"ably host without port", func(c *Config) {
			c.Provider = "ably"
			c.Ably = publish.AblyConfig{APIKey: "app.key:secret", RESTHost: "localhost:8080", MaxMessageBytes: 65536}
		}, []string{"ABLY_REST_HOST"}},
		{"ably size bounds", func(c *Config) { c.Provider = "ably"; c.Ably.APIKey = "a.b:c"; c.Ably.MaxMessageBytes = 100 }, []string{"ABLY_MAX_MESSAGE_BYTES"}},
		{"piesocket needs key, secret and cluster", func(c *Config) { c.Provider = "piesocket" }, []string{"PIESOCKET_API_KEY", "PIESOCKET_SECRET", "PIESOCKET_CLUSTER_ID"}},
		{"piesocket ok", func(c *Config) {
			c.Provider = "piesocket"
			c.PieSocket = publish.PieSocketConfig{APIKey: "k", Secret: "s", ClusterID: "demo", MaxMessageBytes: 16384}
		}, nil},
		{"piesocket regional cluster", func(c *Config) {
			c.Provider = "piesocket"
			c.PieSocket = publish.PieSocketConfig{APIKey: "k", Secret: "s", ClusterID: "s1234.nyc1", MaxMessageBytes: 16384}
		}, nil},
		{"piesocket bad url", func(c *Config) {
			c.Provider = "piesocket"
			c.PieSocket = publish.PieSocketConfig{APIKey: "k", Secret: "s", APIURL: "ftp://x", MaxMessageBytes: 16384}
		}, []string{"PIESOCKET_API_URL"}},
		{"provider timeout bounds", func(c *Config) { c.ProviderTimeout = 2 * time.Minute }, nil},
		{"provider timeout short", func(c *Config) { c.ProviderTimeout = 99 * time.Millisecond }, []string{"LIVE_PROVIDER_TIMEOUT"}},
		{"provider timeout long", func(c *Config) { c.ProviderTimeout = 2*time.Minute + 1 }, []string{"LIVE_PROVIDER_TIMEOUT"}},

		// Batching and flow control.
		{"batch window 0", func(c *Config) { c.BatchWindow = 0 }, nil},
		{"batch window negative", func(c *Config) { c.BatchWindow = -time.Millisecond }, []string{"LIVE_BATCH_WINDOW"}},
		{"batch window long", func(c *Config) { c.BatchWindow = 11 * time.Second }, []string{"LIVE_BATCH_WINDOW"}},
		{"batch max events 0", func(c *Config) { c.BatchMaxEvents = 0 }, []string{"LIVE_BATCH_MAX_EVENTS"}},
		{"batch max events big", func(c *Config) { c.BatchMaxEvents = 100001 }, []string{"LIVE_BATCH_MAX_EVENTS"}},
		{"batch max bytes 1024", func(c *Config) { c.BatchMaxBytes = 1024 }, nil},
		{"batch max bytes small", func(c *Config) { c.BatchMaxBytes = 1023 }, []string{"LIVE_BATCH_MAX_BYTES"}},
		{"concurrency 0", func(c *Config) { c.PublishConcurrency = 0 }, []string{"LIVE_PUBLISH_CONCURRENCY"}},
		{"concurrency big", func(c *Config) { c.PublishConcurrency = 1025 }, []string{"LIVE_PUBLISH_CONCURRENCY"}},
		{"max ack pending 0", func(c *Config) { c.MaxAckPending = 0 }, []string{"LIVE_MAX_ACK_PENDING"}},
		{"max ack pending big", func(c *Config) { c.MaxAckPending = 1000001 }, []string{"LIVE_MAX_ACK_PENDING"}},
		{"ack wait short", func(c *Config) { c.AckWait = time.Second - 1 }, []string{"LIVE_ACK_WAIT"}},
		{"max deliver unlimited", func(c *Config) { c.MaxDeliver = -1 }, nil},
		{"max deliver 0", func(c *Config) { c.MaxDeliver = 0 }, []string{"LIVE_MAX_DELIVER"}},
		{"max deliver -2", func(c *Config) { c.MaxDeliver = -2 }, []string{"LIVE_MAX_DELIVER"}},
		{"shutdown timeout short", func(c *Config) { c.ShutdownTimeout = 0 }, []string{"LIVE_SHUTDOWN_TIMEOUT"}},

		// Operations.
		{"http disabled", func(c *Config) { c.HTTPAddr = "" }, nil},
		{"http bad", func(c *Config) { c.HTTPAddr = "9090" }, []string{"LIVE_HTTP_ADDR"}},
		{"log level", func(c *Config) { c.LogLevel = "debug" }, nil},
		{"log level unknown", func(c *Config) { c.LogLevel = "trace" }, []string{"LIVE_LOG_LEVEL"}},
		{"log format", func(c *Config) { c.LogFormat = "console" }, nil},
		{"log format unknown", func(c *Config) { c.LogFormat = "text" }, []string{"LIVE_LOG_FORMAT"}},

		// Retry.
		{"retry unlimited attempts", func(c *Config) { c.Retry.MaxAttempts = 0 }, nil},
		{"retry negative attempts", func(c *Config) { c.Retry.MaxAttempts = -1 }, []string{"LIVE_RETRY_MAX_ATTEMPTS"}},
		{"retry initial 0", func(c *Config) { c.Retry.Initial = 0 }, []string{"LIVE_RETRY_INITIAL"}},
		{"retry max below initial", func(c *Config) { c.Retry.Initial, c.Retry.Max = time.Second, time.Millisecond }, []string{"LIVE_RETRY_MAX"}},
		{"retry max equals initial", func(c *Config) { c.Retry.Initial, c.Retry.Max = time.Second, time.Second }, nil},
		{"retry max elapsed 0", func(c *Config) { c.Retry.MaxElapsed = 0 }, []string{"LIVE_RETRY_MAX_ELAPSED"}},

		// Everything is reported at once.
		{"several", func(c *Config) { c.Partitions, c.LogLevel, c.Retry.MaxElapsed = -1, "loud", 0 },
			[]string{"LIVE_PARTITIONS", "LIVE_LOG_LEVEL", "LIVE_RETRY_MAX_ELAPSED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := problems(t, tt.mutate)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate() problems in %v, want %v; error:\n%v", got, tt.want, err)
			}
		})
	}
}

func TestValidateMessages(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"range", func(c *Config) { c.Partitions = 2000 }, `LIVE_PARTITIONS="2000": want a whole number from 0 to 1024`},
		{"duration range", func(c *Config) { c.BatchWindow = time.Minute }, `LIVE_BATCH_WINDOW="1m": want a duration from 0s to 10s`},
		{"enum", func(c *Config) { c.Provider = "kafka" }, `LIVE_PROVIDER="kafka": want one of "stdout", "pusher", "ably", "piesocket"`},
		{"required", func(c *Config) {
			c.Provider = "pusher"
			c.Pusher = publish.PusherConfig{AppID: "1", Key: "k", Cluster: "eu"}
		},
			`PUSHER_APP_SECRET="": required when LIVE_PROVIDER=pusher`},
		{"secret value hidden", func(c *Config) {
			c.NATSURL, c.NATSCreds, c.NATSToken = "nats://n:4222", os.Args[0], "s3cr3t"
		}, `LIVE_NATS_TOKEN="***": conflicts with LIVE_NATS_CREDS: set only one of LIVE_NATS_CREDS, LIVE_NATS_NKEY, LIVE_NATS_TOKEN, LIVE_NATS_USER`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || err.Error() != tt.want {
				t.Errorf("Validate() = %v\nwant %s", err, tt.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("errors.As(%v, *FieldError) = false", err)
			}
		})
	}
}

// TestProviderProblemsNameTheirSettings: whatever a provider's Validate reports, each
// problem comes out as a *FieldError of a setting of the table, so that a provider
// naming a setting the configuration does not declare fails here.
func TestProviderProblemsNameTheirSettings(t *testing.T) {
	for _, p := range Providers() {
		if p == ProviderStdout {
			continue
		}
		t.Run(p, func(t *testing.T) {
			c := Default()
			c.Provider = p
			c.Pusher, c.Ably, c.PieSocket = publish.PusherConfig{}, publish.AblyConfig{}, publish.PieSocketConfig{}
			c.ProviderTimeout = -time.Second
			var joined interface{ Unwrap() []error }
			if !errors.As(c.Validate(), &joined) {
				t.Fatal("Validate accepted an empty provider configuration")
			}
			for _, err := range joined.Unwrap() {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Errorf("%v is no *FieldError", err)
				} else if _, ok := Lookup(fe.Env); !ok {
					t.Errorf("%v names no setting", err)
				}
			}
		})
	}
}
