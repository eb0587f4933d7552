package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
)

// filterFlags are the letter filters shared by "dlq list" and "replay".
type filterFlags struct {
	channel, reason string
	since, until    timeFlag
	limit           int
}

func (f *filterFlags) bind(fs *pflag.FlagSet, now func() time.Time) {
	f.since.now, f.until.now = now, now
	fs.StringVar(&f.channel, "channel", "", "only letters of channel `C` (the channel id)")
	fs.StringVar(&f.reason, "reason", "", "only letters with reason `R` (their Live-Dlq-Reason), e.g. provider-rejected")
	fs.Var(&f.since, "since", "only letters stored at or after `T`: RFC 3339, a date, or a duration ago such as 2h or 7d")
	fs.Var(&f.until, "until", "only letters stored at or before `T`: RFC 3339, a date, or a duration ago")
	fs.IntVar(&f.limit, "limit", 0, "at most `N` letters; 0 is no limit")
}

// filter checks the flags together and returns the filter; its errors name the flag.
func (f *filterFlags) filter() (dlq.Filter, error) {
	if f.channel != "" {
		if err := event.CheckChannel(f.channel); err != nil {
			return dlq.Filter{}, fmt.Errorf("--channel: %w", err)
		}
	}
	if f.limit < 0 {
		return dlq.Filter{}, fmt.Errorf("--limit %d: want 0 (no limit) or more", f.limit)
	}
	if !f.since.t.IsZero() && !f.until.t.IsZero() && f.until.t.Before(f.since.t) {
		return dlq.Filter{}, fmt.Errorf("--until %s is before --since %s", f.until.t.Format(time.RFC3339), f.since.t.Format(time.RFC3339))
	}
	return dlq.Filter{Channel: f.channel, Reason: dlq.Reason(f.reason), Since: f.since.t, Until: f.until.t, Limit: f.limit}, nil
}

// timeFlag is a point in time given as RFC 3339, a date, or a duration ago.
type timeFlag struct {
	t   time.Time
	now func() time.Time
}

func (f *timeFlag) String() string {
	if f == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

// Type names the value's kind in --help.
func (f *timeFlag) Type() string { return "time" }

func (f *timeFlag) Set(s string) error {
	t, err := parseWhen(s, f.now())
	if err != nil {
		return err
	}
	f.t = t
	return nil
}

// parseWhen reads RFC 3339 (2026-11-29T15:00:00Z), a date (2026-11-29, midnight UTC)
// or a duration before now (90s, 2h, 1h30m, 7d).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := parseAgo(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time (2026-11-29T15:00:00Z), a date (2026-11-29) or a duration ago (90s, 2h, 7d)")
	}
	return now.Add(-d), nil
}

// parseAgo is time.ParseDuration that also reads whole days ("7d") and refuses
// negative durations.
func parseAgo(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("bad day count %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}
