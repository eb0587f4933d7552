package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/publish/pushertest"
)

// opsSetup is a real nats-server with liverelay's streams and some dead letters, for
// the operator commands.
type opsSetup struct {
	t   *testing.T
	url string
	js  jetstream.JetStream
	cfg config.Config
}

func newOpsSetup(t *testing.T) *opsSetup {
	t.Helper()
	srv, js, cfg := startBroker(t)
	top := broker.Topology{Stream: cfg.Stream, Prefix: cfg.SubjectPrefix, DLQStream: cfg.DLQStream, DLQPrefix: cfg.DLQPrefix,
		Partitions: cfg.Partitions, Replicas: 1, DuplicateWindow: cfg.DuplicateWindow, MaxAge: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := top.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	return &opsSetup{t: t, url: srv.URL(), js: js, cfg: cfg}
}

// letters writes: 1 a provider-rejected render of channel "a", 2 a malformed body on
// subject "b", 3 a retries-exhausted update of "news.uk/live".
func (o *opsSetup) letters() {
	o.t.Helper()
	w := dlq.NewWriter(o.js, o.cfg.DLQPrefix, prometheus.NewRegistry())
	first := time.Date(2026, 11, 29, 15, 0, 0, 0, time.UTC)
	render := func(ch, post, html string, rev int64) []byte {
		return event.Append(nil, event.Event{Channel: ch, Renders: []event.Render{{ID: post, Show: true, Content: html}}, Revision: rev})
	}
	for _, l := range []dlq.Letter{
		{Token: "a", Channel: "a", Body: render("a", "p1", `<p class="x">kick-off</p>`, 100), Reason: dlq.ReasonPermanent,
			Detail: "pusher: 401 Unauthorized: invalid signature", Provider: "pusher", Attempts: 1, FirstFailure: first, LastFailure: first, SourceSeqs: []uint64{7}, SourceSubject: "live.events.2.a"},
		{Token: "b", Body: []byte(`{"v":1,"channel":"b","renders":{`), Reason: event.ReasonMalformed, Detail: "the message is not valid JSON", SourceSeqs: []uint64{8}, SourceSubject: "live.events.5.b"},
		{Token: event.Token("news.uk/live"), Channel: "news.uk/live", Body: render("news.uk/live", "p2", "<p>goal</p>", 200), Reason: dlq.ReasonExhausted,
			Detail: "pusher: 503 Service Unavailable", Provider: "pusher", Attempts: 10, FirstFailure: first, LastFailure: first.Add(5 * time.Minute), SourceSeqs: []uint64{9, 10, 11, 12, 13}, SourceSubject: "live.events.1.news%2Euk%2Flive"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := w.Write(ctx, l)
		cancel()
		if err != nil {
			o.t.Fatal(err)
		}
	}
}

// run runs the worker binary's dispatch in-process with --nats pointing at the server.
func (o *opsSetup) run(args ...string) (code int, stdout, stderr string) {
	o.t.Helper()
	return runWorker(o.t, append(args, "--nats-url", o.url)...)
}

// runOK is run for a command that must exit 0: it fails t otherwise, logs stdout and
// returns stdout and stderr.
func (o *opsSetup) runOK(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	code, out, errOut := o.run(args...)
	if code != 0 {
		t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	t.Logf("%s:\n%s", strings.Join(args, " "), out)
	return out, errOut
}

func runWorker(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = dispatch(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func (o *opsSetup) streamMsgs(name string) uint64 {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := o.js.Stream(ctx, name)
	if err != nil {
		o.t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// tableSeqs returns the SEQ column of a "dlq list" table.
func tableSeqs(out string) string {
	var seqs []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && regexp.MustCompile(`^\d+$`).MatchString(f[0]) {
			seqs = append(seqs, f[0])
		}
	}
	return strings.Join(seqs, ",")
}

func TestDLQListCommand(t *testing.T) {
	o := newOpsSetup(t)
	o.letters()

	out, _ := o.runOK(t, "dlq", "list")
	lines := strings.Split(out, "\n")
	header := regexp.MustCompile(`^SEQ +TIME +CHANNEL +REASON +ATTEMPTS +SOURCE SEQS +DETAIL$`)
	if !header.MatchString(lines[0]) {
		t.Fatalf("header %q", lines[0])
	}
	col := strings.Index(lines[0], "REASON")
	for i, want := range []dlq.Reason{dlq.ReasonPermanent, event.ReasonMalformed, dlq.ReasonExhausted} {
		if !strings.HasPrefix(lines[i+1][col:], string(want)) {
			t.Errorf("row %d: the REASON column does not hold %s: %q", i+1, want, lines[i+1])
		}
	}
	for _, want := range []string{"2026-", "  a  ", "b*", "news.uk/live", "9,10,11,…(+2)", "401 Unauthorized", "(3 letters; * channel read"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q", want)
		}
	}

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--channel", "a"}, "1"},
		{[]string{"--channel", "news.uk/live"}, "3"},
		{[]string{"--reason", string(dlq.ReasonExhausted)}, "3"},
		{[]string{"--limit", "2"}, "1,2"},
		{[]string{"--since", "1h"}, "1,2,3"},
		{[]string{"--since", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "--until", "2999-01-01"}, "1,2,3"},
		{[]string{"--until", "2020-01-01T00:00:00Z"}, ""},
		{[]string{"--channel", "zzz"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, _ := o.runOK(t, append([]string{"dlq", "list"}, tt.args...)...)
			if got := tableSeqs(out); got != tt.want {
				t.Fatalf("letters %q, want %q in\n%s", got, tt.want, out)
			}
			if tt.want == "" && !strings.Contains(out, "no dead letters match") {
				t.Fatalf("no letters, but no message saying so: %q", out)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		out, _ := o.runOK(t, "dlq", "list", "--json")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 {
			t.Fatalf("%d lines, want one per letter:\n%s", len(lines), out)
		}
		var got []letterJSON
		for _, l := range lines {
			var j letterJSON
			if err := json.Unmarshal([]byte(l), &j); err != nil {
				t.Fatalf("%v in %s", err, l)
			}
			got = append(got, j)
		}
		first := got[0]
		if first.Seq != 1 || first.Reason != dlq.ReasonPermanent || first.Channel != "a" || first.Provider != "pusher" || first.Attempts != 1 ||
			first.Subject != "live.dlq.a" || first.FirstFailure == nil || fmt.Sprint(first.SourceSeqs) != "[7]" || first.Body == nil ||
			first.Headers[dlq.HeaderReason][0] != string(dlq.ReasonPermanent) {
			t.Errorf("first letter %+v", first)
		}
		if !strings.Contains(lines[0], `<p class=`) || strings.Contains(lines[0], `\u003c`) {
			t.Errorf("HTML in the body is escaped: %s", lines[0])
		}
		if _, err := event.Decode([]byte(*first.Body)); err != nil {
			t.Errorf("the body of letter 1 is no longer the event: %v", err)
		}
		if got[2].Channel != "news.uk/live" || len(got[2].SourceSeqs) != 5 {
			t.Errorf("third letter %+v", got[2])
		}
		code, out, _ := o.run("dlq", "list", "--json", "--reason", "nope")
		if code != 0 || out != "" {
			t.Errorf("--json with nothing to list: exit %d, %q", code, out)
		}
	})
	t.Run("unknown reason hint", func(t *testing.T) {
		code, _, errOut := o.run("dlq", "list", "--reason", "provider-rejectd")
		if code != 0 || !strings.Contains(errOut, "not one liverelay writes") {
			t.Fatalf("exit %d, %q", code, errOut)
		}
		for _, r := range dlq.Reasons() {
			if !strings.Contains(errOut, string(r.Reason)) {
				t.Errorf("the hint does not name %s: %q", r.Reason, errOut)
			}
		}
	})
	t.Run("every reason accepted", func(t *testing.T) {
		for _, r := range dlq.Reasons() {
			code, _, errOut := o.run("dlq", "list", "--reason", string(r.Reason))
			if code != 0 || errOut != "" {
				t.Errorf("--reason %s: exit %d, %q", r.Reason, code, errOut)
			}
		}
	})
}

func TestDLQShowCommand(t *testing.T) {
	o := newOpsSetup(t)
	o.letters()

	out, _ := o.runOK(t, "dlq", "show", "1")
	for _, want := range []string{
		"letter 1 of LIVE_DLQ", "subject  live.dlq.a", "stored   ",
		"Live-Dlq-Reason", string(dlq.ReasonPermanent), "Live-Dlq-Detail", "401 Unauthorized: invalid signature", "Live-Dlq-Provider", "Live-Dlq-Attempts",
		"Live-Dlq-First-Failure", "2026-11-29T15:00:00Z", "Live-Dlq-Source-Seqs", "Live-Dlq-Source-Subject", "live.events.2.a", "Nats-Msg-Id",
		`a valid event of channel "a": 1 render, 0 removals, revision 100`,
		"\n    \"channel\": \"a\",\n", `"content": "<p class=\"x\">kick-off</p>"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q", want)
		}
	}
	if strings.Index(out, "Live-Dlq-Reason") > strings.Index(out, "Live-Dlq-Detail") || strings.Index(out, "Live-Dlq-Source-Subject") > strings.Index(out, "Nats-Msg-Id") {
		t.Errorf("headers are not in the letter's order")
	}

	code, out, _ := o.run("dlq", "show", "2")
	if code != 0 || !strings.Contains(out, "not a valid event: malformed-json") || !strings.Contains(out, `  {"v":1,"channel":"b","renders":{`+"\n") {
		t.Errorf("show of a malformed letter: exit %d\n%s", code, out)
	}

	code, out, _ = o.run("dlq", "show", "--json", "3")
	var j letterJSON
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.Seq != 3 || j.Attempts != 10 || j.LastFailure == nil || !j.LastFailure.Equal(time.Date(2026, 11, 29, 15, 5, 0, 0, time.UTC)) {
		t.Errorf("show --json: exit %d, %s", code, out)
	}

	code, _, errOut := o.run("dlq", "show", "42")
	if code != 1 || !strings.Contains(errOut, "letter 42 of LIVE_DLQ") || !strings.Contains(errOut, "no such dead letter") {
		t.Errorf("show of a missing letter: exit %d, %q", code, errOut)
	}
}

func TestReplayCommand(t *testing.T) {
	o := newOpsSetup(t)
	o.letters()

	out, _ := o.runOK(t, "replay", "--dry-run")
	for _, want := range []string{
		"dry run: would replay letters of LIVE_DLQ into LIVE_EVENTS",
		"would-replay    seq 1", "→ live.events.a\n",
		"skipped-invalid seq 2", "not a valid event (malformed-json)",
		"would-replay    seq 3", "→ live.events.news%2Euk%2Flive\n",
		"dry run: 2 would be replayed, 1 skipped (invalid); nothing was published or deleted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q", want)
		}
	}
	if n := o.streamMsgs("LIVE_EVENTS"); n != 0 {
		t.Fatalf("a dry run published %d events", n)
	}
	if n := o.streamMsgs("LIVE_DLQ"); n != 3 {
		t.Fatalf("a dry run left %d letters", n)
	}

	out, _ = o.runOK(t, "replay", "--channel", "news.uk/live")
	if !regexp.MustCompile(`replayed +seq 3 .* → live\.events\.news%2Euk%2Flive \(LIVE_EVENTS seq 1\)`).MatchString(out) ||
		!strings.Contains(out, "replay: 1 replayed, 0 already replayed (duplicates), 0 skipped (invalid), 0 failed") {
		t.Errorf("replay output:\n%s", out)
	}

	out, errOut := o.runOK(t, "replay")
	if !strings.Contains(out, "replay: 1 replayed, 0 already replayed (duplicates), 1 skipped (invalid), 0 failed") || !strings.Contains(errOut, "--include-invalid") {
		t.Errorf("replay output:\n%s\nstderr %s", out, errOut)
	}
	if n := o.streamMsgs("LIVE_EVENTS"); n != 2 {
		t.Fatalf("%d events published, want 2", n)
	}
	code, out, _ := o.run("dlq", "list")
	if code != 0 || tableSeqs(out) != "2" {
		t.Fatalf("left in the DLQ: %q, want the malformed letter 2", tableSeqs(out))
	}

	code, out, errOut = o.run("replay", "--include-invalid", "--every", "5")
	if code != 0 || !strings.Contains(out, "replay: 1 replayed") || strings.Contains(out, "seq 2") {
		t.Fatalf("replay --include-invalid --every 5: exit %d\n%s%s", code, out, errOut)
	}
	if n := o.streamMsgs("LIVE_DLQ"); n != 0 {
		t.Fatalf("%d letters left", n)
	}
}

// A letter that could not be re-published stays in the DLQ, and replay exits 1.
func TestReplayCommandFailure(t *testing.T) {
	o := newOpsSetup(t)
	o.letters()
	code, out, errOut := o.run("replay", "--subject-prefix", "nowhere", "--timeout", "1s", "--every", "100")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	if !regexp.MustCompile(`failed +seq 1 .*re-publish to nowhere\.a`).MatchString(out) ||
		!strings.Contains(out, "2 failed") || !strings.Contains(errOut, "2 letters failed and stay in LIVE_DLQ") {
		t.Fatalf("output:\n%s\nstderr:\n%s", out, errOut)
	}
	if n := o.streamMsgs("LIVE_DLQ"); n != 3 {
		t.Fatalf("%d letters left, want 3", n)
	}
}

// Bad flag values stop a command with exit 2 and a message naming the flag.
func TestOpsCommandBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"dlq"}, "want a sub-command"},
		{[]string{"dlq", "purge"}, `unknown sub-command "purge"`},
		{[]string{"dlq", "list", "--since", "yesterday"}, `invalid argument "yesterday" for "--since"`},
		{[]string{"dlq", "list", "--until", "5x"}, `invalid argument "5x" for "--until"`},
		{[]string{"dlq", "list", "--since", "-2h"}, `"--since"`},
		{[]string{"dlq", "list", "--limit", "many"}, `"--limit"`},
		{[]string{"dlq", "list", "--limit", "-3"}, "--limit -3"},
		{[]string{"dlq", "list", "--channel", "a b"}, "--channel"},
		{[]string{"dlq", "list", "--since", "1h", "--until", "2h"}, "--until"},
		{[]string{"dlq", "list", "--json=perhaps"}, `invalid argument "perhaps" for "--json"`},
		{[]string{"dlq", "list", "--colour"}, "unknown flag: --colour"},
		{[]string{"dlq", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"dlq", "show"}, "want 1 argument"},
		{[]string{"dlq", "show", "1", "2"}, "want 1 argument"},
		{[]string{"dlq", "show", "first"}, `SEQ "first"`},
		{[]string{"dlq", "show", "0"}, `SEQ "0"`},
		{[]string{"replay", "--every", "0"}, "--every 0"},
		{[]string{"replay", "--timeout", "0s"}, "--timeout"},
		{[]string{"replay", "--dry-run=maybe"}, `invalid argument "maybe" for "--dry-run"`},
		{[]string{"replay", "--limit", "-1"}, "--limit -1"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := runWorker(t, append(tt.args, "--nats-url", "nats://127.0.0.1:1")...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, errOut)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Fatalf("stderr does not name the problem %q:\n%s", tt.want, errOut)
			}
		})
	}
	t.Run("unreachable server", func(t *testing.T) {
		code, _, errOut := runWorker(t, "dlq", "list", "--nats-url", "nats://127.0.0.1:1")
		if code != 1 || !strings.Contains(errOut, "--nats") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("help", func(t *testing.T) {
		for _, args := range [][]string{{"dlq", "help"}, {"dlq", "list", "--help"}, {"replay", "--help"}} {
			if code, _, errOut := runWorker(t, args...); code != 0 {
				t.Errorf("%v: exit %d, %s", args, code, errOut)
			}
		}
	})
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 29, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-29T14:00:00Z", now.Add(-time.Hour), true},
		{"2026-11-29T16:00:00+02:00", now.Add(-time.Hour), true},
		{"2026-11-28", time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), true},
		{"2h", now.Add(-2 * time.Hour), true},
		{"90s", now.Add(-90 * time.Second), true},
		{"7d", now.Add(-7 * 24 * time.Hour), true},
		{"0s", now, true},
		{"-1h", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"2026-13-01", time.Time{}, false},
		{"d", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseWhen(tt.in, now)
			if (err == nil) != tt.ok || !got.Equal(tt.want) {
				t.Fatalf("parseWhen(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}

// The fence keeps a replay from rolling a page back: a render that failed (401, so
// dead-lettered at once) and was overtaken by a newer, delivered edit of the same
// post changes nothing when replayed; a failed render that is still the newest is
// delivered by the replay.
func TestReplayEndToEndIsFenced(t *testing.T) {
	const r0, r1, r2 = 1764422400000000, 1764422401000000, 1764422402000000
	render := func(rev int64, html string) event.Event {
		return event.Event{Channel: "match-report", Renders: []event.Render{{ID: "p", Show: true, Content: html}}, Revision: rev}
	}
	// rejectR1 makes the fake Pusher refuse, as with a bad signature, any request
	// carrying the r1 render.
	rejectR1 := func(_ int64, events []pushertest.Event) pushertest.Fault {
		for _, e := range events {
			if strings.Contains(e.Data, "<p>r1</p>") {
				return pushertest.Fault{Status: 401}
			}
		}
		return pushertest.Fault{}
	}
	// failR1 publishes r1 and waits until it is dead-lettered as provider-rejected.
	failR1 := func(t *testing.T, h *harness) {
		t.Helper()
		h.pusher.SetScript(rejectR1)
		h.publish(render(r1, "<p>r1</p>"))
		h.waitDelivered(30 * time.Second)
		letters := h.deadLetters()
		if len(letters) != 1 || dlq.Reason(letters[0].Header.Get(dlq.HeaderReason)) != dlq.ReasonPermanent || !strings.Contains(string(letters[0].Data), "<p>r1</p>") {
			t.Fatalf("want the r1 render dead-lettered as %s, got %d letters", dlq.ReasonPermanent, len(letters))
		}
		h.pusher.SetScript(nil) // the provider is fixed
	}
	replay := func(t *testing.T, h *harness) {
		t.Helper()
		code, out, errOut := runWorker(t, "replay", "--nats-url", h.cfg.NATSURL)
		if code != 0 || !strings.Contains(out, "replay: 1 replayed") {
			t.Fatalf("replay: exit %d\n%s%s", code, out, errOut)
		}
		h.waitDelivered(30 * time.Second)
		if n := len(h.deadLetters()); n != 0 {
			t.Fatalf("%d dead letters after the replay, want none", n)
		}
	}
	post := func(t *testing.T, h *harness) string {
		t.Helper()
		page := h.pages()["match-report"]
		if page == nil || len(page.Posts) != 1 || page.Posts[0].ID != "p" {
			t.Fatalf("readers see %+v, want post p alone", page)
		}
		return page.Posts[0].Content
	}

	t.Run("an overtaken render is dropped", func(t *testing.T) {
		h := newHarness(t)
		h.startWorker()
		failR1(t, h)
		h.publish(render(r2, "<p>r2</p>"))
		h.waitDelivered(30 * time.Second)
		if got := post(t, h); got != "<p>r2</p>" {
			t.Fatalf("before the replay readers see %q", got)
		}
		before := len(h.pusher.Events())
		replay(t, h)
		if got := post(t, h); got != "<p>r2</p>" {
			t.Fatalf("after the replay readers see %q, want r2's content: the page rolled back", got)
		}
		for _, e := range h.pusher.Events() {
			if strings.Contains(e.Data, "<p>r1</p>") {
				t.Fatalf("the stale r1 render reached Pusher: %s", e.Data)
			}
		}
		if n := len(h.pusher.Events()); n != before {
			t.Fatalf("the replay published %d events; the fence should have dropped the update", n-before)
		}
		want := cms{}
		want.apply(t, render(r1, "<p>r1</p>"))
		want.apply(t, render(r2, "<p>r2</p>"))
		want.check(t, h.pages())
	})

	t.Run("a still-newest render is delivered", func(t *testing.T) {
		h := newHarness(t)
		h.startWorker()
		h.publish(render(r0, "<p>r0</p>"))
		h.waitDelivered(30 * time.Second)
		failR1(t, h)
		if got := post(t, h); got != "<p>r0</p>" {
			t.Fatalf("before the replay readers see %q", got)
		}
		replay(t, h)
		if got := post(t, h); got != "<p>r1</p>" {
			t.Fatalf("after the replay readers see %q, want r1's content", got)
		}
		want := cms{}
		want.apply(t, render(r0, "<p>r0</p>"))
		want.apply(t, render(r1, "<p>r1</p>"))
		want.check(t, h.pages())
	})
}
