package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every secret can come from a file named by <NAME>_FILE, as Docker and Kubernetes
// mount secrets: read, its trailing newline removed.
func TestSecretsFromFiles(t *testing.T) {
	secrets := map[string]func(Config) string{
		"PUSHER_APP_SECRET":  func(c Config) string { return c.Pusher.Secret },
		"ABLY_API_KEY":       func(c Config) string { return c.Ably.APIKey },
		"PIESOCKET_SECRET":   func(c Config) string { return c.PieSocket.Secret },
		"LIVE_NATS_TOKEN":    func(c Config) string { return c.NATSToken },
		"LIVE_NATS_PASSWORD": func(c Config) string { return c.NATSPassword },
	}
	for _, s := range Settings() {
		if _, ok := secrets[s.Env]; s.Secret && !ok && !strings.HasPrefix(s.Env, "LIVE_EMBEDDED_") {
			t.Errorf("%s is secret and not tested here", s.Env)
		}
	}
	for name, get := range secrets {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "secret", "s3cr3t value\n\n")
			c := Default()
			if err := c.LoadEnv(env(map[string]string{name + "_FILE": path})); err != nil {
				t.Fatalf("LoadEnv: %v", err)
			}
			if got := get(c); got != "s3cr3t value" {
				t.Errorf("%s = %q, want %q (trailing newline trimmed, inner space kept)", name, got, "s3cr3t value")
			}
		})
	}
}

func TestSecretFileErrors(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "token", "hunter2\n")
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"both set", map[string]string{"LIVE_NATS_TOKEN": "hunter2", "LIVE_NATS_TOKEN_FILE": good},
			[]string{"LIVE_NATS_TOKEN_FILE", "LIVE_NATS_TOKEN is set too"}},
		{"both set, even empty", map[string]string{"PUSHER_APP_SECRET": "", "PUSHER_APP_SECRET_FILE": good},
			[]string{"PUSHER_APP_SECRET_FILE", "PUSHER_APP_SECRET is set too"}},
		{"missing file", map[string]string{"ABLY_API_KEY_FILE": filepath.Join(dir, "nope")},
			[]string{"ABLY_API_KEY_FILE", "cannot read the file holding ABLY_API_KEY", "no such file"}},
		{"a folder", map[string]string{"PIESOCKET_SECRET_FILE": dir},
			[]string{"PIESOCKET_SECRET_FILE", "cannot read the file holding PIESOCKET_SECRET"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			err := c.LoadEnv(env(tt.env))
			if err == nil {
				t.Fatal("LoadEnv accepted it")
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %v is no *FieldError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

// A _FILE variable is a known name for secrets only; a misspelt one names the
// closest.
func TestCheckEnvAcceptsSecretFiles(t *testing.T) {
	ok := []string{"PUSHER_APP_SECRET_FILE=/run/secrets/p", "ABLY_API_KEY_FILE=/x", "LIVE_NATS_TOKEN_FILE=/x",
		"LIVE_NATS_PASSWORD_FILE=/x", "PIESOCKET_SECRET_FILE=/x"}
	if err := CheckEnv(ok); err != nil {
		t.Errorf("CheckEnv(%v) = %v, want nil", ok, err)
	}
	err := CheckEnv([]string{"LIVE_PROVIDER_FILE=/x", "LIVE_NATS_TOKEN_FIEL=/x"})
	for _, w := range []string{"LIVE_PROVIDER_FILE is not a setting", "LIVE_NATS_TOKEN_FIEL is not a setting; did you mean LIVE_NATS_TOKEN_FILE?"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("CheckEnv error %v does not say %q", err, w)
		}
	}
}

// writeFile writes content to the file name in dir, readable by its owner only, and
// returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
