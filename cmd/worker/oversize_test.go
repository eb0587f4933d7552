package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/publish/pushertest"
)

// letters reads every dead letter back through the reader the CLI uses (which puts a
// letter written in chunks together again).
func (h *harness) letters() []dlq.Entry {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := dlq.NewReader(h.js, h.cfg.DLQStream, h.cfg.DLQPrefix).List(ctx, dlq.Filter{})
	if err != nil {
		h.t.Fatalf("read dead letters: %v", err)
	}
	return out
}

// waitLetters polls the dead-letter stream until cond holds of its letters.
func (h *harness) waitLetters(timeout time.Duration, what string, cond func([]dlq.Entry) bool) []dlq.Entry {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := h.letters()
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("after %v, %s: %d letters in the dead-letter stream", timeout, what, len(got))
		}
		time.Sleep(100 * time.Millisecond) // poll interval of a deadline-bounded wait
	}
}

// maxPayload is the test server's max payload, as the server announces it.
func (h *harness) maxPayload() int {
	h.t.Helper()
	nc, _ := h.nats.Connect()
	return int(nc.MaxPayload())
}

// deadPosts decodes the letters' bodies and returns, per post id, the reason it was
// dead-lettered with.
func deadPosts(t *testing.T, letters []dlq.Entry) map[string]dlq.Reason {
	t.Helper()
	out := map[string]dlq.Reason{}
	for _, l := range letters {
		ev, err := event.Decode(l.Body)
		if err != nil {
			continue
		}
		for _, r := range ev.Renders {
			out[r.ID] = l.Reason
		}
	}
	return out
}

// TestOutageJobStaysWithinWhatCanBeDeadLettered: while the provider is down, a
// channel's retried job used to absorb every newer event; 141 posts of 8 KB made its
// dead letter larger than NATS's max payload, the write failed forever and the channel
// froze. Now the job keeps to LIVE_BATCH_MAX_BYTES (the rest waits for the next job),
// letters too big for one message are split by posts (an operator may set the limit
// above NATS's max payload), and every post ends delivered or dead-lettered, in order,
// with the channel flowing again.
func TestOutageJobStaysWithinWhatCanBeDeadLettered(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes int
		split    bool // the job's letter must be split by posts
	}{
		{"default limits", 1 << 20, false},
		{"limit above the max payload", 4 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) { outageJob(t, tc.maxBytes, tc.split) })
	}
}

func outageJob(t *testing.T, maxBytes int, split bool) {
	h := newHarness(t)
	h.cfg.BatchMaxBytes = maxBytes
	h.cfg.Retry.MaxAttempts = 0 // ride the outage out; the provider's 400 ends it
	const (
		down = iota
		rejecting
		up
	)
	var mode atomic.Int32
	h.pusher.SetScript(func(_ int64, events []pushertest.Event) pushertest.Fault {
		switch mode.Load() {
		case down:
			return pushertest.Fault{Status: 500}
		case rejecting:
			for _, e := range events {
				if strings.Contains(e.Data, "during the outage") {
					return pushertest.Fault{Status: 400}
				}
			}
		}
		return pushertest.Fault{}
	})
	h.startWorker()

	const ch, n = "outage-blog", 141
	rev := time.Now().UnixMicro()
	post := func(i int, text string) event.Event {
		rev++
		html := fmt.Sprintf("<div>%s %d: %s</div>", text, i, strings.Repeat("x", 8*1024))
		return event.Event{Channel: ch, Renders: []event.Render{{ID: fmt.Sprintf("p%03d", i), Show: true, Content: html}}, Revision: rev}
	}
	h.publish(post(0, "during the outage"))
	deadline := time.Now().Add(30 * time.Second)
	for h.pusher.Requests() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no request reached the provider")
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a deadline-bounded wait
	}
	for i := 1; i < n; i++ {
		h.publish(post(i, "during the outage"))
	}
	// Once the worker holds every event, two more requests: at least one retry went
	// out after the channel's newer events could join its job.
	for {
		held, err := h.held()
		if err == nil && held == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker holds %d of %d events (%v)", held, n, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a deadline-bounded wait
	}
	before := h.pusher.Requests()
	for h.pusher.Requests() < before+2 {
		if time.Now().After(deadline) {
			t.Fatal("no retry after the worker held every event")
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a deadline-bounded wait
	}
	mode.Store(rejecting)

	letters := h.waitLetters(60*time.Second, fmt.Sprintf("want all %d outage posts dead-lettered", n), func(ls []dlq.Entry) bool {
		return len(deadPosts(t, ls)) == n
	})
	max := h.maxPayload()
	parts := 0
	for _, l := range letters {
		ev, _ := event.Decode(l.Body)
		t.Logf("letter %d: part %q, %d posts, %d bytes, %d source seqs", l.Seq, l.Part, len(ev.Renders), len(l.Body), len(l.SourceSeqs))
		if l.Part != "" {
			parts++
		}
		if len(l.Chunks) > 0 {
			t.Errorf("letter %d of 8 KB posts is chunked; it should be split by posts", l.Seq)
		}
		if !split && len(ev.Renders) > 128 {
			t.Errorf("letter %d holds %d posts of 8 KB: its job went past LIVE_BATCH_MAX_BYTES", l.Seq, len(ev.Renders))
		}
		if l.Reason != dlq.ReasonPermanent {
			t.Errorf("letter %d: reason %q, want %q", l.Seq, l.Reason, dlq.ReasonPermanent)
		}
		if len(l.Body) > max {
			t.Errorf("letter %d: body of %d bytes, over the max payload %d", l.Seq, len(l.Body), max)
		}
	}
	if split && parts < 2 {
		t.Errorf("%d letters are parts; the job of more than 1 MiB should have been split by posts", parts)
	}
	mode.Store(up)
	h.publish(post(n, "after the outage"))
	h.waitDelivered(60 * time.Second)
	var got []string
	for _, e := range h.pusher.Events() {
		if e.Channel == ch {
			got = append(got, e.Data)
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], fmt.Sprintf(`"p%03d"`, n)) {
		t.Fatalf("after the outage readers got %d updates, want the one post published after it", len(got))
	}
	t.Logf("%d posts in %d dead letters (%d of them parts); the channel flows again", n, len(letters), parts)
}

// held is how many events the partition consumers have delivered and not had acked,
// when none is waiting to be delivered.
func (h *harness) held() (int, error) {
	pending, ackPending, err := h.consumerCounts()
	switch {
	case err != nil:
		return -1, err
	case pending > 0:
		return -1, fmt.Errorf("%d not delivered yet", pending)
	}
	return ackPending, nil
}

// fill returns the size of content that makes body (built around it) exactly size bytes.
func fill(size int, build func(content string) []byte) []byte {
	return build(strings.Repeat("x", size-len(build(""))))
}

// TestHugePostIsDeadLetteredAndChannelFlows: a post as large as NATS lets through
// makes a post-too-large letter larger than the max payload. It is written in chunks
// (the reader puts it together), and the channel's next event is delivered.
func TestHugePostIsDeadLetteredAndChannelFlows(t *testing.T) {
	h := newHarness(t)
	h.startWorker()
	max := h.maxPayload()
	const ch = "huge-post"
	body := fill(max, func(content string) []byte {
		return event.Append(nil, event.Event{Channel: ch, Renders: []event.Render{{ID: "big", Show: true, Content: "<p>" + content + "</p>"}}, Revision: 1})
	})
	h.publishRaw(event.Token(ch), body, "") // no header: the body alone fills the max payload
	h.publish(event.Event{Channel: ch, Renders: []event.Render{{ID: "small", Show: true, Content: "<p>after</p>"}}, Revision: 2})
	h.waitDelivered(30 * time.Second)

	events := h.pusher.WaitEvents(t, 1, 30*time.Second)
	if len(events) != 1 || !strings.Contains(events[0].Data, `"small"`) || strings.Contains(events[0].Data, `"big"`) {
		t.Fatalf("readers got %d updates, want the small post alone", len(events))
	}
	letters := h.letters()
	if len(letters) != 1 || letters[0].Reason != dlq.ReasonPostTooLarge {
		t.Fatalf("%d letters, want one post-too-large", len(letters))
	}
	ev, err := event.Decode(letters[0].Body)
	if err != nil {
		t.Fatalf("letter body: %v", err)
	}
	want, _ := event.Decode(body)
	if len(ev.Renders) != 1 || ev.Renders[0] != want.Renders[0] {
		t.Fatal("the dead letter does not hold the post as it was published")
	}
	t.Logf("%d-byte event: letter of %d bytes", len(body), len(letters[0].Body))
}

// TestHugeInvalidEventIsDeadLettered: an invalid event as large as NATS lets through
// cannot be stored with dead-letter headers in one message. It is written in chunks,
// byte for byte, acked, and a valid event of its channel is delivered.
func TestHugeInvalidEventIsDeadLettered(t *testing.T) {
	h := newHarness(t)
	h.startWorker()
	max := h.maxPayload()
	const ch = "huge-bad"
	body := fill(max-16, func(content string) []byte {
		return []byte(`{"v":1,"channel":"` + ch + `","renders":{"p":{"show":"yes","content":"` + content + `"}},"removals":[]}`)
	})
	h.publishRaw(event.Token(ch), body, "")
	h.publish(event.Event{Channel: ch, Renders: []event.Render{{ID: "ok", Show: true, Content: "<p>valid</p>"}}, Revision: 1})
	h.waitDelivered(30 * time.Second)
	letters := h.waitLetters(30*time.Second, "want the invalid event", func(ls []dlq.Entry) bool { return len(ls) > 0 })
	if len(letters) != 1 || letters[0].Reason != event.ReasonRenders || !bytes.Equal(letters[0].Body, body) {
		t.Fatalf("%d letters; want one %s letter holding the %d-byte event as it was", len(letters), event.ReasonRenders, len(body))
	}
	if e := h.pusher.WaitEvents(t, 1, 30*time.Second); len(e) != 1 || !strings.Contains(e[0].Data, `"ok"`) {
		t.Fatalf("readers got %d updates, want the valid event", len(e))
	}
}
