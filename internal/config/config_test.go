package config

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/liverelay/liverelay/internal/publish"
)

// env returns a lookup function over m, standing in for os.LookupEnv.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
}

func TestSettings(t *testing.T) {
	got := Settings()
	if len(got) != len(settings()) {
		t.Fatalf("Settings() has %d entries, want %d", len(got), len(settings()))
	}
	seenEnv := map[string]bool{}
	seenFlag := map[string]bool{}
	for _, s := range got {
		if seenEnv[s.Env] || seenFlag[s.Flag] {
			t.Errorf("setting %s/%s declared twice", s.Env, s.Flag)
		}
		seenEnv[s.Env], seenFlag[s.Flag] = true, true
		if s.Help == "" {
			t.Errorf("setting %s has no help", s.Env)
		}
	}

	// Every field of Config (nested structs included) has exactly one setting.
	fields := 0
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		if f.Type.Kind() != reflect.Struct || f.Type == reflect.TypeFor[time.Duration]() {
			fields++
		}
	}
	fields += reflect.TypeFor[Retry]().NumField() + reflect.TypeFor[Ingest]().NumField()
	// A provider's fields, but its Timeout: that is LIVE_PROVIDER_TIMEOUT.
	fields += reflect.TypeFor[publish.PusherConfig]().NumField() - 1 +
		reflect.TypeFor[publish.AblyConfig]().NumField() - 1 +
		reflect.TypeFor[publish.PieSocketConfig]().NumField() - 1
	if len(got) != fields {
		t.Errorf("Settings() has %d entries, Config has %d fields", len(got), fields)
	}

	byEnv := map[string]Setting{}
	for _, s := range got {
		byEnv[s.Env] = s
	}
	tests := []struct{ env, flag, def string }{
		{"LIVE_BATCH_WINDOW", "batch-window", "25ms"},
		{"PUSHER_APP_ID", "pusher-app-id", ""},
		{"PUSHER_SECURE", "pusher-secure", "true"},
		{"LIVE_NATS_TLS_CERT", "nats-tls-cert", ""},
		{"LIVE_DUPLICATE_WINDOW", "duplicate-window", "2m"},
		{"LIVE_BATCH_MAX_BYTES", "batch-max-bytes", "1048576"},
		{"LIVE_EMBEDDED_SYNC", "embedded-sync", "always"},
		{"LIVE_RETRY_MAX_ELAPSED", "retry-max-elapsed", "5m"},
		{"LIVE_HTTP_ADDR", "http-addr", ":9090"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			s, ok := byEnv[tt.env]
			if !ok {
				t.Fatalf("no setting %s", tt.env)
			}
			if s.Flag != tt.flag || s.Default != tt.def {
				t.Errorf("got flag %q default %q, want %q %q", s.Flag, s.Default, tt.flag, tt.def)
			}
		})
	}
}

func TestLoadEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(Config) bool
	}{
		{"duration", map[string]string{"LIVE_BATCH_WINDOW": "100ms"}, func(c Config) bool { return c.BatchWindow == 100*time.Millisecond }},
		{"int", map[string]string{"LIVE_PARTITIONS": " 32 "}, func(c Config) bool { return c.Partitions == 32 }},
		{"negative int", map[string]string{"LIVE_MAX_DELIVER": "-1"}, func(c Config) bool { return c.MaxDeliver == -1 }},
		{"bool", map[string]string{"PUSHER_SECURE": "false"}, func(c Config) bool { return !c.Pusher.Secure }},
		{"nested string", map[string]string{"PUSHER_APP_KEY": "k"}, func(c Config) bool { return c.Pusher.Key == "k" }},
		{"retry", map[string]string{"LIVE_RETRY_MAX_ATTEMPTS": "0", "LIVE_RETRY_MAX": "1m"}, func(c Config) bool {
			return c.Retry.MaxAttempts == 0 && c.Retry.Max == time.Minute
		}},
		{"empty string disables", map[string]string{"LIVE_HTTP_ADDR": ""}, func(c Config) bool { return c.HTTPAddr == "" }},
		{"empty number keeps default", map[string]string{"LIVE_MAX_DELIVER": ""}, func(c Config) bool { return c.MaxDeliver == 20 }},
		{"unset keeps default", nil, func(c Config) bool { return c == Default() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			if err := c.LoadEnv(env(tt.env)); err != nil {
				t.Fatalf("LoadEnv: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("LoadEnv(%v) gave %s", tt.env, c)
			}
		})
	}
}

func TestLoadEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // exact messages, in settings order
	}{
		{"duration", map[string]string{"LIVE_BATCH_WINDOW": "abc"},
			[]string{`LIVE_BATCH_WINDOW="abc": want a duration such as 50ms`}},
		{"duration without unit", map[string]string{"LIVE_ACK_WAIT": "30"},
			[]string{`LIVE_ACK_WAIT="30": want a duration such as 50ms`}},
		{"int", map[string]string{"LIVE_PARTITIONS": "eight"},
			[]string{`LIVE_PARTITIONS="eight": want a whole number such as 16`}},
		{"bool", map[string]string{"PUSHER_SECURE": "yes please"},
			[]string{`PUSHER_SECURE="yes please": want true or false`}},
		{"all reported", map[string]string{"LIVE_PARTITIONS": "x", "LIVE_RETRY_MAX": "y"}, []string{
			`LIVE_PARTITIONS="x": want a whole number such as 16`,
			`LIVE_RETRY_MAX="y": want a duration such as 50ms`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			err := c.LoadEnv(env(tt.env))
			var got []string
			for _, fe := range fieldErrors(err) {
				got = append(got, fe.Error())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("LoadEnv errors = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBindFlagsOverrideEnv(t *testing.T) {
	c := Default()
	err := c.LoadEnv(env(map[string]string{
		"LIVE_BATCH_WINDOW": "100ms",
		"LIVE_PARTITIONS":   "4",
		"PUSHER_APP_ID":     "from-env",
		"LIVE_NATS_TOKEN":   "env-token",
	}))
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Bind(fs)

	if got := fs.Lookup("partitions").DefValue; got != "4" {
		t.Errorf("--partitions default = %q, want the env value 4", got)
	}
	err = fs.Parse([]string{
		"--batch-window=10ms",
		"--pusher-app-id", "from-flag",
		"--pusher-secure=false",
		"--retry-max-attempts=3",
		"--nats-token", "flag-token",
	})
	if err != nil {
		t.Fatal(err)
	}

	want := Default()
	want.BatchWindow = 10 * time.Millisecond
	want.Partitions = 4
	want.Pusher.AppID = "from-flag"
	want.Pusher.Secure = false
	want.Retry.MaxAttempts = 3
	want.NATSToken = "flag-token"
	if c != want {
		t.Errorf("after flags:\n got %s\nwant %s", c, want)
	}
}

func TestBindRegistersEverySetting(t *testing.T) {
	c := Default()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Bind(fs)
	for _, s := range Settings() {
		f := fs.Lookup(s.Flag)
		if f == nil {
			t.Errorf("no flag --%s", s.Flag)
			continue
		}
		if !strings.Contains(f.Usage, "$"+s.Env) {
			t.Errorf("--%s usage %q does not name %s", s.Flag, f.Usage, s.Env)
		}
	}
	if err := fs.Parse([]string{"--batch-window=abc"}); err == nil {
		t.Error("--batch-window=abc parsed")
	}
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.NATSURL = "nats://alice:hunter2@nats-1:4222,nats://s3cr3t-tok@nats-2:4222,nats-3:4222"
	c.NATSUser = "alice"
	c.NATSPassword = "hunter2"
	c.NATSToken = "s3cr3t-tok"
	c.Pusher.Secret = "pusher-s3cret"
	c.Pusher.Key = "public-key"
	secrets := []string{"hunter2", "s3cr3t-tok", "pusher-s3cret"}

	r := c.Redacted()
	if r.NATSPassword != "***" || r.NATSToken != "***" || r.Pusher.Secret != "***" {
		t.Errorf("Redacted kept a secret: %+v", r)
	}
	if want := "nats://***@nats-1:4222,nats://***@nats-2:4222,nats-3:4222"; r.NATSURL != want {
		t.Errorf("Redacted NATSURL = %q, want %q", r.NATSURL, want)
	}
	if r.Pusher.Key != "public-key" || r.NATSUser != "alice" {
		t.Errorf("Redacted hid a non-secret: %+v", r)
	}
	if c.NATSPassword != "hunter2" {
		t.Error("Redacted changed the original")
	}
	if got := Default().Redacted(); got != Default() {
		t.Errorf("Redacted of unset secrets = %+v, want them left empty", got)
	}

	var logged bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	zap.New(zapcore.NewCore(enc, zapcore.AddSync(&logged), zapcore.DebugLevel)).
		Info("config", zap.Object("config", c), zap.Any("any", c))
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	var help bytes.Buffer
	fs.SetOutput(&help)
	c.Bind(fs)
	fs.PrintDefaults()

	renderings := map[string]string{
		"String":  c.String(),
		"zap":     logged.String(),
		"--help":  help.String(),
		"Setting": settingsText(),
	}
	for name, text := range renderings {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows secret %q:\n%s", name, s, text)
			}
		}
	}
	if !strings.Contains(c.String(), "pusher-app-secret=***") {
		t.Errorf("String() = %s, want pusher-app-secret=***", c.String())
	}
	if !strings.Contains(logged.String(), `"pusher-app-secret":"***"`) {
		t.Errorf("zap output %s, want pusher-app-secret redacted", logged.String())
	}
}

func TestEnvErrorHidesSecret(t *testing.T) {
	c := Default()
	err := c.LoadEnv(env(map[string]string{"LIVE_NATS_URL": "nats://bob:pa55@nats:4222", "LIVE_PARTITIONS": "x"}))
	if err == nil {
		t.Fatal("want an error")
	}
	c.NATSURL = "nats://bob:pa55@"
	err = errors.Join(err, c.Validate())
	if strings.Contains(err.Error(), "pa55") {
		t.Errorf("error shows a secret: %v", err)
	}
}

func TestResolvedLogFormat(t *testing.T) {
	tests := []struct {
		format   string
		terminal bool
		want     string
	}{
		{"", true, "console"},
		{"", false, "json"},
		{"json", true, "json"},
		{"console", false, "console"},
	}
	for _, tt := range tests {
		t.Run(tt.format+"/"+map[bool]string{true: "tty", false: "pipe"}[tt.terminal], func(t *testing.T) {
			c := Default()
			c.LogFormat = tt.format
			if got := c.ResolvedLogFormat(tt.terminal); got != tt.want {
				t.Errorf("ResolvedLogFormat(%v) = %q, want %q", tt.terminal, got, tt.want)
			}
		})
	}
}

func TestEmbeddedSyncPolicy(t *testing.T) {
	tests := []struct {
		sync     string
		always   bool
		interval time.Duration
	}{
		{"always", true, 0},
		{"ALWAYS", true, 0},
		{"2m", false, 2 * time.Minute},
		{"500ms", false, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.sync, func(t *testing.T) {
			c := Default()
			c.EmbeddedSync = tt.sync
			always, interval := c.EmbeddedSyncPolicy()
			if always != tt.always || interval != tt.interval {
				t.Errorf("EmbeddedSyncPolicy() = %v, %v; want %v, %v", always, interval, tt.always, tt.interval)
			}
		})
	}
}

func TestProviders(t *testing.T) {
	p := Providers()
	if !slices.Contains(p, ProviderStdout) || !slices.Contains(p, ProviderPusher) {
		t.Errorf("Providers() = %v", p)
	}
	p[0] = "changed"
	if Providers()[0] == "changed" {
		t.Error("Providers() exposes the package's list")
	}
}

// problems validates the default configuration changed by mutate, and returns the
// Env of every problem, in report order, with Validate's error. It fails t when a
// problem is not a *FieldError, or does not read ENV=value: reason.
func problems(t *testing.T, mutate func(*Config)) ([]string, error) {
	t.Helper()
	c := Default()
	mutate(&c)
	err := c.Validate()
	for _, e := range unjoin(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("Validate() = %v: %v is not made of *FieldError", err, e)
		}
	}
	var got []string
	for _, fe := range fieldErrors(err) {
		got = append(got, fe.Env)
		if !strings.HasPrefix(fe.Error(), fe.Env+"=") || !strings.Contains(fe.Reason, " ") {
			t.Errorf("problem %q does not read ENV=value: reason", fe.Error())
		}
	}
	return got, err
}

// fieldErrors flattens a joined error into its *FieldError parts.
func fieldErrors(err error) []*FieldError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*FieldError
		for _, e := range j.Unwrap() {
			out = append(out, fieldErrors(e)...)
		}
		return out
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []*FieldError{fe}
	}
	return nil
}

func settingsText() string {
	var b strings.Builder
	for _, s := range Settings() {
		b.WriteString(s.Env + " " + s.Flag + " " + s.Default + " " + s.Help + "\n")
	}
	return b.String()
}
