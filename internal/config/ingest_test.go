package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestValidateIngest(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "secret", "s3cret-from-file\n")
	on := func(c *Config) {
		c.Ingest.Addr, c.Ingest.AppID, c.Ingest.Key, c.Ingest.Secret = "127.0.0.1:8080", "1", "key", "hunter2"
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"off needs nothing", func(c *Config) {}, nil},
		{"on", on, nil},
		{"on without credentials", func(c *Config) { c.Ingest.Addr = ":8080" },
			[]string{"LIVE_INGEST_APP_ID", "LIVE_INGEST_KEY", "LIVE_INGEST_SECRET"}},
		{"secret file", func(c *Config) { on(c); c.Ingest.Secret, c.Ingest.SecretFile = "", file }, nil},
		{"secret and file", func(c *Config) { on(c); c.Ingest.SecretFile = file }, []string{"LIVE_INGEST_SECRET_FILE"}},
		{"missing secret file", func(c *Config) { on(c); c.Ingest.Secret, c.Ingest.SecretFile = "", filepath.Join(dir, "x") },
			[]string{"LIVE_INGEST_SECRET_FILE"}},
		{"bad address", func(c *Config) { on(c); c.Ingest.Addr = "8080" }, []string{"LIVE_INGEST_ADDR"}},
		{"same address as health", func(c *Config) { on(c); c.Ingest.Addr = c.HTTPAddr }, []string{"LIVE_INGEST_ADDR"}},
		{"app id with a slash", func(c *Config) { on(c); c.Ingest.AppID = "1/2" }, []string{"LIVE_INGEST_APP_ID"}},
		{"no event name", func(c *Config) { on(c); c.Ingest.EventName = "" }, []string{"LIVE_INGEST_EVENT_NAME"}},
		{"tiny max bytes", func(c *Config) { on(c); c.Ingest.MaxBytes = 10 }, []string{"LIVE_INGEST_MAX_BYTES"}},
		{"cert without key", func(c *Config) { on(c); c.Ingest.TLSCert = file }, []string{"LIVE_INGEST_TLS_KEY"}},
		{"cert and key", func(c *Config) { on(c); c.Ingest.TLSCert, c.Ingest.TLSKey = file, file }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := problems(t, tt.mutate)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems with %v, want %v (%v)", got, tt.want, err)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the secret is shown: %v", err)
			}
		})
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestIngestSecret(t *testing.T) {
	file := writeFile(t, t.TempDir(), "secret", " s3cret\n")
	c := Default()
	c.Ingest.Secret = "env"
	if s, err := c.IngestSecret(); s != "env" || err != nil {
		t.Errorf("IngestSecret() = %q, %v; want env", s, err)
	}
	c.Ingest.Secret, c.Ingest.SecretFile = "", file
	if s, err := c.IngestSecret(); s != "s3cret" || err != nil {
		t.Errorf("IngestSecret() = %q, %v; want s3cret", s, err)
	}
	c.Ingest.Secret = "hunter2"
	if r := c.Redacted(); r.Ingest.Secret != "***" || strings.Contains(c.String(), "hunter2") {
		t.Errorf("the ingest secret is not masked: %q / %s", r.Ingest.Secret, c.String())
	}
}
