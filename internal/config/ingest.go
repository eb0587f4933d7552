package config

import (
	"fmt"
	"os"
	"strings"
)

// validateIngest checks the Pusher-compatible ingest's settings: none is needed
// while LIVE_INGEST_ADDR is empty; with it, the credentials a Pusher client signs
// with are required.
func (c Config) validateIngest(v *checker) {
	in := c.Ingest
	if in.Addr == "" {
		return
	}
	v.hostPort("LIVE_INGEST_ADDR", in.Addr)
	if in.Addr == c.HTTPAddr {
		v.fail("LIVE_INGEST_ADDR", "must differ from LIVE_HTTP_ADDR: the ingest has a listener of its own")
	}
	if in.AppID == "" {
		v.fail("LIVE_INGEST_APP_ID", "required with LIVE_INGEST_ADDR")
	} else if strings.ContainsAny(in.AppID, "/?#%& ") {
		v.fail("LIVE_INGEST_APP_ID", "want an app id without / ? # %% & or spaces: it is part of the request path")
	}
	if in.Key == "" {
		v.fail("LIVE_INGEST_KEY", "required with LIVE_INGEST_ADDR")
	}
	switch {
	case in.Secret == "" && in.SecretFile == "":
		v.fail("LIVE_INGEST_SECRET", "required with LIVE_INGEST_ADDR (or LIVE_INGEST_SECRET_FILE)")
	case in.Secret != "" && in.SecretFile != "":
		v.fail("LIVE_INGEST_SECRET_FILE", "conflicts with LIVE_INGEST_SECRET: set only one")
	case in.SecretFile != "":
		v.file("LIVE_INGEST_SECRET_FILE")
	}
	if in.EventName == "" || len(in.EventName) > 200 {
		v.fail("LIVE_INGEST_EVENT_NAME", "want 1 to 200 characters, as Pusher allows")
	}
	v.intRange("LIVE_INGEST_MAX_BYTES", in.MaxBytes, 1024, 8<<20)
	switch {
	case in.TLSCert != "" && in.TLSKey == "":
		v.fail("LIVE_INGEST_TLS_KEY", "required with LIVE_INGEST_TLS_CERT")
	case in.TLSKey != "" && in.TLSCert == "":
		v.fail("LIVE_INGEST_TLS_CERT", "required with LIVE_INGEST_TLS_KEY")
	}
	v.file("LIVE_INGEST_TLS_CERT")
	v.file("LIVE_INGEST_TLS_KEY")
}

// IngestSecret is the ingest's app secret: LIVE_INGEST_SECRET, or the content of
// LIVE_INGEST_SECRET_FILE without surrounding white space. The error never quotes
// the secret.
func (c Config) IngestSecret() (string, error) {
	if c.Ingest.SecretFile == "" {
		return c.Ingest.Secret, nil
	}
	b, err := os.ReadFile(c.Ingest.SecretFile)
	if err != nil {
		return "", fmt.Errorf("LIVE_INGEST_SECRET_FILE: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("LIVE_INGEST_SECRET_FILE=%q: the file is empty", c.Ingest.SecretFile)
	}
	return s, nil
}
