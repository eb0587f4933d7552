package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liverelay/liverelay/internal/publish"
)

// checker collects problems, rendering each setting's value from the
// settings table so secrets stay redacted.
type checker struct {
	c     *Config
	specs map[string]spec
	errs  []error
}

func newChecker(c *Config) *checker {
	specs := make(map[string]spec)
	for _, s := range settings() {
		specs[s.env] = s
	}
	return &checker{c: c, specs: specs}
}

// value is the setting as written in the environment, secrets redacted.
func (v *checker) value(env string) string {
	s, ok := v.specs[env]
	if !ok {
		panic("config: unknown setting " + env)
	}
	return s.display(v.c)
}

func (v *checker) fail(env, reason string, args ...any) {
	v.errs = append(v.errs, &FieldError{Env: env, Value: v.value(env), Reason: fmt.Sprintf(reason, args...)})
}

func (v *checker) err() error { return errors.Join(v.errs...) }

// adopt takes the errors of a validator outside this package: each setting it names
// becomes a FieldError like the checker's own.
func (v *checker) adopt(err error) {
	if err == nil {
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			v.adopt(e)
		}
		return
	}
	var se *publish.SettingError
	if errors.As(err, &se) {
		if _, known := v.specs[se.Env]; known {
			v.fail(se.Env, "%s", se.Reason)
			return
		}
	}
	v.errs = append(v.errs, err)
}

func (v *checker) intRange(env string, n, lo, hi int) bool {
	if n < lo || n > hi {
		v.fail(env, "want a whole number from %d to %d", lo, hi)
		return false
	}
	return true
}

func (v *checker) atLeast(env string, d, lo time.Duration) {
	if d < lo {
		v.fail(env, "want at least %s", formatDuration(lo))
	}
}

func (v *checker) durRange(env string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.fail(env, "want a duration from %s to %s", formatDuration(lo), formatDuration(hi))
	}
}

func (v *checker) oneOf(env, s, reason string, allowed ...string) bool {
	if !slices.Contains(allowed, s) {
		v.fail(env, "%s", reason)
		return false
	}
	return true
}

// hostPort accepts host:port with a numeric port; the host may be empty
// (all interfaces).
func (v *checker) hostPort(env, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.fail(env, "want host:port such as 127.0.0.1:4222 or :9090")
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.fail(env, "want a port from 0 to 65535")
	}
}

// file requires the path in env, when set, to be an existing regular file.
func (v *checker) file(env string) {
	path := v.value(env)
	if path == "" {
		return
	}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.fail(env, "want an existing file: not found")
	case err != nil:
		v.fail(env, "want a readable file: %v", err)
	case info.IsDir():
		v.fail(env, "want a file, not a directory")
	}
}

// subject requires a literal NATS subject: dot-separated non-empty tokens,
// no wildcards, no whitespace.
func (v *checker) subject(env, subject string) bool {
	const want = "want a subject such as live.events: dot-separated tokens, no wildcards (* >), no spaces, no empty tokens"
	if subject == "" {
		v.fail(env, want)
		return false
	}
	for _, tok := range strings.Split(subject, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			v.fail(env, want)
			return false
		}
	}
	return true
}

// streamName requires a JetStream stream name of letters, digits, _ and -.
func (v *checker) streamName(env, name string) {
	ok := name != ""
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			ok = false
			break
		}
	}
	if !ok {
		v.fail(env, "want letters, digits, _ and - only, such as LIVE_EVENTS")
	}
}

// overlaps reports whether one subject prefix equals or contains the other,
// token-wise: live.events and live.events.dlq overlap, live.events and
// live.eventsx do not.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
}
