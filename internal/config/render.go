package config

import (
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
)

const redactedValue = "***"

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
