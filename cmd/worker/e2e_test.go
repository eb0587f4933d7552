package main

import (
	"strings"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/workload"
)

func smallBlogs(channels int, seed uint64) *workload.Generator {
	cfg := workload.Default()
	cfg.Channels, cfg.Seed = channels, seed
	cfg.MinSize, cfg.MaxSize = 200, 3000
	cfg.MaxLive = 40
	return workload.New(cfg)
}

// TestEndToEndPusher: thousands of events over many channels, published as a CMS does
// (with retried publishes that JetStream must drop), reach the fake Pusher signed and
// within limits, and a model of the browser given what Pusher received shows exactly
// the CMS's final pages.
func TestEndToEndPusher(t *testing.T) {
	h := newHarness(t)
	h.startWorker()
	gen := smallBlogs(60, 1)
	want := cms{}
	const events = 4000
	var sent []event.Event
	want.send(t, gen, events, h.publish, func(i int, ev event.Event) {
		sent = append(sent, ev)
		if i%10 == 0 { // the CMS retried a publish: same Nats-Msg-Id, dropped by the stream
			h.publish(sent[i/2])
		}
	})
	h.waitDelivered(60 * time.Second)
	want.check(t, h.pages())
	if n := len(h.deadLetters()); n != 0 {
		t.Fatalf("%d dead letters, want none", n)
	}
	received := h.pusher.Events()
	if h.pusher.Rejected() != 0 {
		t.Fatalf("the fake Pusher rejected %d requests", h.pusher.Rejected())
	}
	t.Logf("%d events → %d Pusher events in %d requests", events, len(received), h.pusher.Requests())
	if len(received) >= events {
		t.Fatalf("%d provider messages for %d events: merging saved nothing", len(received), events)
	}
}

// TestBadInputIsDeadLettered: each kind of invalid event ends in LIVE_DLQ with its
// reason and original body, and valid events around them are still delivered.
func TestBadInputIsDeadLettered(t *testing.T) {
	h := newHarness(t)
	h.startWorker()
	ok := func(id, html string) {
		h.publish(event.Event{Channel: "ok", Renders: []event.Render{{ID: id, Show: true, Content: html}}, Revision: time.Now().UnixMicro()})
	}
	bad := []struct {
		token, body, reason string
	}{
		{"x", `{"v":1,"channel":"x","renders":{`, event.ReasonMalformed},
		{"x", `{"v": 2, "channel": "x", "renders": {}, "removals": []}`, event.ReasonVersion},
		{"x", `{"v": 1, "channel": "", "renders": {}, "removals": []}`, event.ReasonChannel},
		{"x", `{"v": 1, "channel": "x", "renders": [["id", "<p>"]], "removals": []}`, event.ReasonRenders},
		{"x", `{"v": 1, "channel": "x", "renders": {"p1": {"show": true}}, "removals": []}`, event.ReasonRenders},
		{"x", `{"v": 1, "channel": "x", "renders": {}, "removals": "abc"}`, event.ReasonRemovals},
		{"x", `{"v": 1, "channel": "y", "renders": {}, "removals": []}`, event.ReasonSubjectMismatch},
		{"x", "\x00\xff garbage", event.ReasonMalformed},
	}
	ok("a", "<p>before</p>")
	for _, b := range bad {
		h.publishRaw(b.token, []byte(b.body), "")
	}
	// A post too large for any Pusher message, beside one that fits.
	huge := strings.Repeat("x", 11*1024)
	h.publish(event.Event{Channel: "ok", Renders: []event.Render{{ID: "huge", Show: true, Content: huge}, {ID: "b", Show: true, Content: "<p>fits</p>"}}, Revision: time.Now().UnixMicro()})
	// A channel name Pusher refuses.
	h.publish(event.Event{Channel: "bad!channel", Renders: []event.Render{{ID: "c", Show: true, Content: "<p>c</p>"}}, Revision: time.Now().UnixMicro()})
	ok("d", "<p>after</p>")
	h.waitDelivered(30 * time.Second)

	letters := h.deadLetters()
	if len(letters) != len(bad)+2 {
		t.Fatalf("%d dead letters, want %d", len(letters), len(bad)+2)
	}
	for i, b := range bad {
		l := letters[i]
		if got := l.Header.Get(dlq.HeaderReason); got != b.reason {
			t.Errorf("letter %d: reason %q, want %q (detail %q)", i, got, b.reason, l.Header.Get(dlq.HeaderDetail))
		}
		if string(l.Data) != b.body {
			t.Errorf("letter %d: body %q, want the original %q", i, l.Data, b.body)
		}
		if l.Header.Get(dlq.HeaderDetail) == "" || l.Header.Get(dlq.HeaderSourceSeqs) == "" {
			t.Errorf("letter %d lacks detail or source seqs: %v", i, l.Header)
		}
	}
	// The last two come from the relay, whose channels run independently: any order.
	tooBig, rejected := letters[len(bad)], letters[len(bad)+1]
	if dlq.Reason(tooBig.Header.Get(dlq.HeaderReason)) == dlq.ReasonChannelRejected {
		tooBig, rejected = rejected, tooBig
	}
	if dlq.Reason(tooBig.Header.Get(dlq.HeaderReason)) != dlq.ReasonPostTooLarge || !strings.Contains(string(tooBig.Data), `"huge"`) || strings.Contains(string(tooBig.Data), `"b"`) {
		t.Errorf("too-large letter: %v %.80s", tooBig.Header, tooBig.Data)
	}
	if ev, err := event.Decode(tooBig.Data); err != nil || ev.Channel != "ok" || len(ev.Renders) != 1 {
		t.Errorf("too-large letter body must be a replayable event: %v", err)
	}
	if dlq.Reason(rejected.Header.Get(dlq.HeaderReason)) != dlq.ReasonChannelRejected || rejected.Header.Get(dlq.HeaderChannel) != "bad!channel" {
		t.Errorf("rejected-channel letter: %v", rejected.Header)
	}
	page := h.pages()["ok"]
	if page == nil || len(page.Posts) != 3 {
		t.Fatalf("channel ok shows %+v, want d, b, a", page)
	}
	for i, id := range []string{"d", "b", "a"} {
		if page.Posts[i].ID != id {
			t.Fatalf("channel ok shows %+v, want d, b, a", page.Posts)
		}
	}
}

// TestGracefulShutdownLosesNothing: a worker stopped mid-stream (SIGTERM) flushes and
// acks what it holds; a new worker delivers the rest; readers end with the CMS's pages.
func TestGracefulShutdownLosesNothing(t *testing.T) {
	h := newHarness(t)
	h.pusher.SetDelay(2 * time.Millisecond) // slow enough that the stop lands mid-stream
	gen := smallBlogs(20, 2)
	want := cms{}
	stop := h.startWorker()
	want.send(t, gen, 1500, h.publish, func(i int, _ event.Event) {
		if i == 700 {
			stop()
		}
	})
	left, err := h.undelivered()
	if err != nil || left == 0 {
		t.Fatalf("the stop did not land mid-stream: %d undelivered (%v)", left, err)
	}
	h.startWorker()
	h.waitDelivered(60 * time.Second)
	want.check(t, h.pages())
}
