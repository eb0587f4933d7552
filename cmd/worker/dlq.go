package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/worker"
)

const dlqUsage = `Usage:
  worker dlq list [--channel C] [--reason R] [--since T] [--until T] [--limit N] [--json]
  worker dlq show SEQ [--json]

Lists and shows the dead letters of LIVE_DLQ: what could not be delivered, and why.
T is an RFC 3339 time (2026-11-29T15:00:00Z), a date (2026-11-29, UTC) or a
duration ago (90s, 2h, 7d). Replay letters with "worker replay".
`

// dlqCommand runs "worker dlq list" and "worker dlq show".
func dlqCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "list":
		return dlqListCommand(ctx, args[1:], stdout, stderr)
	case "show":
		return dlqShowCommand(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, dlqUsage)
		return 0
	case "":
		fmt.Fprintf(stderr, "worker dlq: want a sub-command, list or show\n\n%s", dlqUsage)
		return 2
	default:
		if strings.HasPrefix(sub, "-") {
			fmt.Fprintf(stderr, "worker dlq: want a sub-command, list or show, before the flags\n\n%s", dlqUsage)
			return 2
		}
		fmt.Fprintf(stderr, "worker dlq: unknown sub-command %q; want list or show\n\n%s", args[0], dlqUsage)
		return 2
	}
}

func dlqListCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "worker dlq list"
	fs, conn, code := newOpsFlags(name, stderr)
	if fs == nil {
		return code
	}
	var filters filterFlags
	filters.bind(fs, time.Now)
	asJSON := fs.Bool("json", false, "print one JSON object per letter and line, body included")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]\n\nLists dead letters, oldest first.\n\n", name)
		fs.PrintDefaults()
	}
	if _, code, ok := parseFlags(fs, args, 0); !ok {
		return code
	}
	f, err := filters.filter()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	ops, err := conn.connect()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer ops.close()

	var out letterPrinter = &letterTable{w: stdout}
	if *asJSON {
		out = &letterJSONLines{enc: newJSONEncoder(stdout)}
	}
	err = ops.reader().Each(ctx, f, out.add)
	if ferr := out.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if out.count() == 0 && f.Reason != "" && !f.Reason.Known() {
		fmt.Fprintf(stderr, "%s: no letter has reason %q, which is not one liverelay writes: %s\n", name, f.Reason, strings.Join(reasonNames(), ", "))
	}
	return 0
}

func dlqShowCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "worker dlq show"
	fs, conn, code := newOpsFlags(name, stderr)
	if fs == nil {
		return code
	}
	asJSON := fs.Bool("json", false, "print the letter as one JSON object")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s SEQ [flags]\n\nShows one dead letter: every header and the body.\n\n", name)
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, args, 1)
	if !ok {
		return code
	}
	seq, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil || seq == 0 {
		fmt.Fprintf(stderr, "%s: SEQ %q: want the letter's sequence number in %s (a whole number from 1), as \"worker dlq list\" shows it\n", name, pos[0], conn.cfg.DLQStream)
		return 2
	}
	ops, err := conn.connect()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer ops.close()
	e, err := ops.reader().Get(ctx, seq)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if *asJSON {
		err = newJSONEncoder(stdout).Encode(toLetterJSON(e))
	} else {
		err = showLetter(stdout, conn.cfg.DLQStream, e)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// opsFlags are the connection settings of the operator commands: the same
// environment as "worker run", and a few flags.
type opsFlags struct {
	cfg config.Config
	url string
}

// newOpsFlags reads the environment and binds the connection flags. On a bad
// setting it reports it and returns a nil FlagSet and the exit code.
func newOpsFlags(name string, stderr io.Writer) (*flag.FlagSet, *opsFlags, int) {
	o := &opsFlags{cfg: config.Default()}
	if err := errors.Join(config.CheckEnv(os.Environ()), o.cfg.LoadEnv(os.LookupEnv)); err != nil {
		fmt.Fprintf(stderr, "%s: invalid setting:\n%v\n", name, err)
		return nil, nil, 2
	}
	o.url = o.cfg.NATSURL
	if o.url == "" {
		o.url = embeddedURL(o.cfg.EmbeddedListen)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "nats", o.url, "NATS `URL` [$LIVE_NATS_URL]; the default reaches a worker's embedded server (LIVE_EMBEDDED_LISTEN); auth from $LIVE_NATS_CREDS, _NKEY, _TOKEN, _USER/_PASSWORD, _TLS_*")
	fs.StringVar(&o.cfg.DLQStream, "dlq-stream", o.cfg.DLQStream, "JetStream stream of dead letters [$LIVE_DLQ_STREAM]")
	fs.StringVar(&o.cfg.DLQPrefix, "dlq-prefix", o.cfg.DLQPrefix, "dead letters are stored under <prefix>.<channel token> [$LIVE_DLQ_PREFIX]")
	return fs, o, 0
}

// embeddedURL is the client URL of an embedded server listening on listen.
func embeddedURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "nats://127.0.0.1:4222"
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, port)
}

// ops is a connection of an operator command.
type ops struct {
	cfg config.Config
	nc  *nats.Conn
	js  jetstream.JetStream
}

func (o *opsFlags) connect() (*ops, error) {
	c := o.cfg
	nc, err := broker.Connect(o.url, "liverelay-ops", worker.Auth(c), zap.NewNop())
	if err != nil {
		return nil, fmt.Errorf("%w (set --nats or LIVE_NATS_URL)", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &ops{cfg: c, nc: nc, js: js}, nil
}

func (o *ops) close() { o.nc.Close() }

func (o *ops) reader() *dlq.Reader { return dlq.NewReader(o.js, o.cfg.DLQStream, o.cfg.DLQPrefix) }

// parseFlags parses flags placed before or after the positional arguments, and
// checks that there are exactly want of those. ok is false when the command must
// exit with code.
func parseFlags(fs *flag.FlagSet, args []string, want int) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != want {
		if want == 0 {
			fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), pos[0])
		} else {
			fmt.Fprintf(fs.Output(), "%s: want %d argument(s), got %d\n", fs.Name(), want, len(pos))
		}
		fs.Usage()
		return nil, 2, false
	}
	return pos, 0, true
}

// filterFlags are the letter filters shared by "dlq list" and "replay".
type filterFlags struct {
	channel, reason string
	since, until    timeFlag
	limit           int
}

func (f *filterFlags) bind(fs *flag.FlagSet, now func() time.Time) {
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

// reasonNames are the reasons liverelay writes letters with (dlq.Reasons).
func reasonNames() []string {
	var out []string
	for _, r := range dlq.Reasons() {
		out = append(out, string(r.Reason))
	}
	return out
}

// letterPrinter prints listed letters as they are read.
type letterPrinter interface {
	add(dlq.Entry) error
	flush() error
	count() int
}

// letterTable prints an aligned table once every letter is read.
type letterTable struct {
	w        io.Writer
	rows     []dlq.Entry
	fromSubj bool // some channel was read from the subject
}

func (t *letterTable) add(e dlq.Entry) error {
	t.rows = append(t.rows, e)
	return nil
}

func (t *letterTable) count() int { return len(t.rows) }

func (t *letterTable) flush() error {
	if len(t.rows) == 0 {
		_, err := fmt.Fprintln(t.w, "no dead letters match")
		return err
	}
	tw := tabwriter.NewWriter(t.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tCHANNEL\tREASON\tATTEMPTS\tSOURCE SEQS\tDETAIL")
	for _, e := range t.rows {
		attempts := "-"
		if e.Attempts > 0 {
			attempts = strconv.Itoa(e.Attempts)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), t.channel(e), dashIfEmpty(string(e.Reason)),
			attempts, dashIfEmpty(shortSeqs(e.SourceSeqs, 3)), dashIfEmpty(clip(e.Detail, 72)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	note := ""
	if t.fromSubj {
		note = "; * channel read from the letter's subject (the body named none)"
	}
	_, err := fmt.Fprintf(t.w, "(%s%s)\n", countOf(len(t.rows), "letter", "letters"), note)
	return err
}

// channel is the letter's channel, or the one its subject names, starred.
func (t *letterTable) channel(e dlq.Entry) string {
	if e.Channel != "" {
		return clip(e.Channel, 40)
	}
	if ch, err := event.Channel(e.Token); err == nil {
		t.fromSubj = true
		return clip(ch, 39) + "*"
	}
	return "-"
}

// letterJSONLines prints one JSON object per letter, as it is read.
type letterJSONLines struct {
	enc *json.Encoder
	n   int
}

func (j *letterJSONLines) add(e dlq.Entry) error {
	j.n++
	return j.enc.Encode(toLetterJSON(e))
}

func (j *letterJSONLines) flush() error { return nil }
func (j *letterJSONLines) count() int   { return j.n }

// letterJSON is a letter as --json prints it.
type letterJSON struct {
	Seq           uint64              `json:"seq"`
	Subject       string              `json:"subject"`
	Time          time.Time           `json:"time"`
	Reason        dlq.Reason          `json:"reason"`
	Detail        string              `json:"detail,omitempty"`
	Channel       string              `json:"channel,omitempty"`
	Provider      string              `json:"provider,omitempty"`
	Attempts      int                 `json:"attempts,omitempty"`
	FirstFailure  *time.Time          `json:"first_failure,omitempty"`
	LastFailure   *time.Time          `json:"last_failure,omitempty"`
	SourceSeqs    []uint64            `json:"source_seqs,omitempty"`
	SourceSubject string              `json:"source_subject,omitempty"`
	Headers       map[string][]string `json:"headers"`
	// Chunks are the sequences of a letter stored in several messages; Incomplete is
	// true when some of them are missing.
	Chunks     []uint64 `json:"chunks,omitempty"`
	Incomplete bool     `json:"incomplete,omitempty"`
	// Body is the body as text when it is valid UTF-8; otherwise BodyBase64 holds it.
	Body       *string `json:"body,omitempty"`
	BodyBase64 []byte  `json:"body_base64,omitempty"`
}

func toLetterJSON(e dlq.Entry) letterJSON {
	j := letterJSON{
		Seq: e.Seq, Subject: e.Subject, Time: e.Time.UTC(), Reason: e.Reason, Detail: e.Detail, Channel: e.Channel,
		Provider: e.Provider, Attempts: e.Attempts, SourceSeqs: e.SourceSeqs, SourceSubject: e.SourceSubject,
		Headers: map[string][]string(e.Header), Chunks: e.Chunks, Incomplete: e.Incomplete(),
	}
	if j.Headers == nil {
		j.Headers = map[string][]string{}
	}
	if !e.FirstFailure.IsZero() {
		t := e.FirstFailure.UTC()
		j.FirstFailure = &t
	}
	if !e.LastFailure.IsZero() {
		t := e.LastFailure.UTC()
		j.LastFailure = &t
	}
	if utf8.Valid(e.Body) {
		s := string(e.Body)
		j.Body = &s
	} else {
		j.BodyBase64 = e.Body
	}
	return j
}

// newJSONEncoder writes one object per line, HTML left as it is.
func newJSONEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// headerOrder is the order "dlq show" prints the letter headers in; others follow,
// sorted.
var headerOrder = []string{
	dlq.HeaderReason, dlq.HeaderDetail, dlq.HeaderChannel, dlq.HeaderProvider, dlq.HeaderAttempts,
	dlq.HeaderFirstFailure, dlq.HeaderLastFailure, dlq.HeaderSourceSeqs, dlq.HeaderSourceSubject,
	dlq.HeaderPart, dlq.HeaderChunk, dlq.HeaderLetter,
}

// showLetter prints one letter for a person: where it is, every header, and the body
// (indented when it is JSON), with what replay would make of it.
func showLetter(w io.Writer, stream string, e dlq.Entry) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "letter %d of %s\n", e.Seq, stream)
	fmt.Fprintf(&b, "  subject  %s\n", e.Subject)
	fmt.Fprintf(&b, "  stored   %s (%s ago)\n", e.Time.UTC().Format(time.RFC3339Nano), time.Since(e.Time).Round(time.Second))
	if e.ChunkCount > 0 {
		fmt.Fprintf(&b, "  chunks   %d of %d, at %s", len(e.Chunks), e.ChunkCount, shortSeqs(e.Chunks, 8))
		if e.Incomplete() {
			b.WriteString(" (incomplete: the body below is only part of the letter)")
		}
		b.WriteByte('\n')
	}

	keys := make([]string, 0, len(e.Header))
	for k := range e.Header {
		if !slices.Contains(headerOrder, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var ordered []string
	for _, k := range headerOrder {
		if _, ok := e.Header[k]; ok {
			ordered = append(ordered, k)
		}
	}
	ordered = append(ordered, keys...)
	b.WriteString("\nheaders\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, k := range ordered {
		for _, v := range e.Header[k] {
			fmt.Fprintf(tw, "  %s\t%s\n", k, v)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(&b, "\nbody (%d bytes; %s)\n", len(e.Body), describeBody(e.Body))
	switch {
	case json.Valid(e.Body):
		var ind bytes.Buffer
		if err := json.Indent(&ind, e.Body, "  ", "  "); err != nil {
			return err
		}
		b.WriteString("  ")
		b.Write(ind.Bytes())
		b.WriteByte('\n')
	case utf8.Valid(e.Body) && !hasControl(e.Body):
		b.WriteString("  ")
		b.Write(e.Body)
		b.WriteByte('\n')
	default:
		fmt.Fprintf(&b, "  %q\n", e.Body)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// describeBody says whether replay can publish the body as an event.
func describeBody(body []byte) string {
	ev, err := event.Decode(body)
	if err != nil {
		var de *event.Error
		if errors.As(err, &de) {
			return "not a valid event: " + de.Reason + ", " + de.Detail + "; replay skips it unless --include-invalid"
		}
		return "not a valid event: " + err.Error()
	}
	s := fmt.Sprintf("a valid event of channel %q: %s, %s", ev.Channel,
		countOf(len(ev.Renders), "render", "renders"), countOf(len(ev.Removals), "removal", "removals"))
	if ev.Revision != 0 {
		s += fmt.Sprintf(", revision %d", ev.Revision)
	}
	return s
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\n' && c != '\t' && c != '\r' || c == 0x7f {
			return true
		}
	}
	return false
}

// clip shortens s to at most n runes, on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// shortSeqs prints at most n sequences and how many more there are.
func shortSeqs(seqs []uint64, n int) string {
	var b strings.Builder
	for i, s := range seqs {
		if i == n {
			fmt.Fprintf(&b, ",…(+%d)", len(seqs)-n)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(s, 10))
	}
	return b.String()
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// countOf writes n with the noun that fits: "1 letter", "3 letters".
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
