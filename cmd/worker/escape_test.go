package main

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
)

// hostile is what anyone who can publish an event controls: a channel name and
// letter contents with terminal escapes (retitle, clear the screen), a C1 control
// (CSI), a carriage return, a right-to-left override, and a byte that is not UTF-8.
const hostile = "x\x1b]0;pwned\x07\x1b[2J\x1b[H\u009b31m\r\u202egnp.exe\xff"

// terminalUnsafe returns the first character of s a terminal would act on, beyond a
// line break or a tab.
func terminalUnsafe(s string) (string, bool) {
	for i, r := range s {
		switch {
		case r == '\n' || r == '\t':
		case r == utf8.RuneError && strings.HasPrefix(s[i:], "\xff"):
			return "invalid byte", true
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r):
			return string(r), true
		}
	}
	return "", false
}

// Every human-readable output of dlq list, dlq show and replay escapes control
// characters: a letter's channel, headers and body cannot drive the operator's
// terminal.
func TestOpsOutputEscapesControlCharacters(t *testing.T) {
	o := newOpsSetup(t)
	w := dlq.NewWriter(o.js, o.cfg.DLQPrefix, prometheus.NewRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch := "evil" + hostile
	for _, l := range []dlq.Letter{
		// A letter of a channel name with escapes, whose body is a valid event.
		{Token: event.Token(ch), Channel: ch, Reason: dlq.ReasonPermanent, Detail: "provider said " + hostile, Provider: "pusher",
			Body:       event.Append(nil, event.Event{Channel: ch, Renders: []event.Render{{ID: "p" + hostile, Show: true, Content: "<p>" + hostile + "</p>"}}, Revision: 1}),
			SourceSeqs: []uint64{1}, SourceSubject: "live.events.0." + event.Token(ch)},
		// An invalid event, named by its subject's token only.
		{Token: event.Token(ch), Reason: event.ReasonMalformed + hostile, Detail: hostile, Body: []byte("not json " + hostile),
			SourceSeqs: []uint64{2}, SourceSubject: "live.events.0." + event.Token(ch)},
	} {
		if err := w.Write(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"dlq", "list"},
		{"dlq", "list", "--json"},
		{"dlq", "show", "1"},
		{"dlq", "show", "2"},
		{"dlq", "show", "1", "--json"},
		{"replay", "--dry-run", "--every", "1"},
		{"replay", "--every", "1"},
	} {
		code, stdout, stderr := o.run(args...)
		if code > 1 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		for name, out := range map[string]string{"stdout": stdout, "stderr": stderr} {
			if c, bad := terminalUnsafe(out); bad {
				t.Errorf("%v: %s holds %q unescaped:\n%s", args, name, c, out)
			}
		}
		if !strings.Contains(stdout+stderr, `\u001b`) && !strings.Contains(stdout+stderr, `\x1b`) {
			t.Errorf("%v: the escape is not shown escaped:\n%s", args, stdout)
		}
	}
}

// The escaper keeps text, line breaks and tabs, escapes the rest, and does not break
// a character cut between two writes.
func TestEscaper(t *testing.T) {
	for _, tt := range []struct {
		writes []string
		want   string
	}{
		{[]string{"plain café\tok\n"}, "plain café\tok\n"},
		{[]string{"a\x1b[2Jb\r"}, `a\u001b[2Jb\u000d`},
		{[]string{"\u009b1m \u202e \x7f"}, `\u009b1m \u202e \u007f`},
		{[]string{"caf\xc3", "\xa9"}, "café"},
		{[]string{"\xff", "x"}, `\xffx`},
		{[]string{"end\xc3"}, `end\xc3`},
		{[]string{`{"s":"\u001b"}`}, `{"s":"\u001b"}`},
	} {
		var b strings.Builder
		e := newEscaper(&b)
		for _, w := range tt.writes {
			if _, err := e.Write([]byte(w)); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Flush(); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("%q: got %q, want %q", tt.writes, b.String(), tt.want)
		}
	}
}
