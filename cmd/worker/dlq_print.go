package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
)

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
