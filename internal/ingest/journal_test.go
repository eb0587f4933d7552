package ingest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/broker/topologytest"
	"github.com/liverelay/liverelay/internal/event"
)

// startStreams starts a server with liverelay's streams, connects to it and returns
// the event stream.
func startStreams(t testing.TB) (jetstream.JetStream, broker.Topology, jetstream.Stream) {
	t.Helper()
	_, js, top := topologytest.Start(t, 4)
	return js, top, topologytest.Stream(t, js, top.Stream)
}

// storedEvents reads every event of the stream in stream order.
func storedEvents(t testing.TB, s jetstream.Stream) []event.Event {
	t.Helper()
	ctx := context.Background()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		ev, err := event.Decode(m.Data)
		if err != nil {
			t.Fatalf("message %d is not an event: %v", seq, err)
		}

		if !strings.HasPrefix(m.Subject, "live.events.") || strings.Count(m.Subject, ".") != 3 {
			t.Errorf("message %d stored as %s, want live.events.<partition>.<token>", seq, m.Subject)
		}
		if id := m.Header.Get(jetstream.MsgIDHeader); id != "direct" && !strings.HasPrefix(id, "ingest:"+ev.Channel+":") {
			t.Errorf("message %d has Nats-Msg-Id %q, want ingest:<channel>:<revision>…", seq, id)
		}
		out = append(out, ev)
	}
	return out
}

func post(channel, id, html string) event.Event {
	return event.Event{Channel: channel, Renders: []event.Render{{ID: id, Show: true, Content: html}}, Removals: []string{}}
}

// Events without a revision get one per channel that grows in stream order, from the
// channel's last event: past a revision the CMS gave, whatever the clock says.
func TestJournalStampsRevisions(t *testing.T) {
	js, top, stream := startStreams(t)
	j := NewJournal(js, stream, top)
	ctx := context.Background()

	future := time.Now().Add(time.Hour).UnixMicro()
	given := post("news.uk/live", "p2", "given")
	given.Revision = future
	if err := j.Append(ctx, []event.Event{post("news.uk/live", "p1", "a"), post("other", "q", "x"), given, post("news.uk/live", "p1", "b")}); err != nil {
		t.Fatal(err)
	}
	evs := storedEvents(t, stream)
	if len(evs) != 4 {
		t.Fatalf("%d events stored, want 4", len(evs))
	}
	if evs[2].Revision != future {
		t.Errorf("a revision the CMS gave was changed: %d, want %d", evs[2].Revision, future)
	}
	if evs[3].Revision != future+1 {
		t.Errorf("revision after the CMS's %d is %d, want %d", future, evs[3].Revision, future+1)
	}
	// An event stored by someone else (a CMS publishing to NATS, another worker) after
	// the one this journal remembers: the next revision follows it all the same.
	direct := post("news.uk/live", "p3", "direct")
	direct.Revision = future + 1000
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "live.events." + event.Token(direct.Channel), Data: event.Append(nil, direct),
		Header: nats.Header{jetstream.MsgIDHeader: {"direct"}}}); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(ctx, []event.Event{post("news.uk/live", "p1", "c")}); err != nil {
		t.Fatal(err)
	}
	if evs := storedEvents(t, stream); evs[5].Revision != future+1001 {
		t.Errorf("revision after another writer's %d is %d, want %d", future+1000, evs[5].Revision, future+1001)
	}
	if now := time.Now().UnixMicro(); evs[0].Revision <= 0 || evs[0].Revision > now || evs[1].Revision > now {
		t.Errorf("first revisions %d, %d are not the time in microseconds", evs[0].Revision, evs[1].Revision)
	}
}

// Two journals (two workers), one with a clock ten seconds slow, stamping one channel
// at once: every event is stored, and revisions grow in stream order.
func TestJournalsShareAChannel(t *testing.T) {
	srv, js1, top := topologytest.Start(t, 4)
	_, js2 := srv.Connect()
	s1, s2 := topologytest.Stream(t, js1, top.Stream), topologytest.Stream(t, js2, top.Stream)
	a, b := NewJournal(js1, s1, top), NewJournal(js2, s2, top)
	b.now = func() time.Time { return time.Now().Add(-10 * time.Second) }

	const each = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for w, j := range []*Journal{a, b} {
		wg.Go(func() {
			for i := range each {
				if err := j.Append(context.Background(), []event.Event{post("live-blog", "p", fmt.Sprintf("w%d-%d", w, i))}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	evs := storedEvents(t, s1)
	if len(evs) != 2*each {
		t.Fatalf("%d events stored, want %d", len(evs), 2*each)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Revision <= evs[i-1].Revision {
			t.Fatalf("event %d has revision %d after %d: not growing in stream order", i, evs[i].Revision, evs[i-1].Revision)
		}
	}
}

// With NATS down the request fails at once with 503, and nothing is stored.
func TestNATSDownAnswers503(t *testing.T) {
	srv, js, top := topologytest.Start(t, 4)
	stream := topologytest.Stream(t, js, top.Stream)
	h, err := NewHandler(Config{Credentials: testCreds, EventName: "live-page-update", MaxBytes: 4096, Timeout: 3 * time.Second},
		NewJournal(js, stream, top), nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	web := startServer(t, h)
	c := goClientAt(web, testCreds)
	ok := update{Renders: map[string]render{"p": {true, "x"}}, Removals: []string{}}
	if err := c.Trigger("c", "live-page-update", ok); err != nil {
		t.Fatalf("with NATS up: %v", err)
	}

	srv.Shutdown()
	start := time.Now()
	err = c.Trigger("c", "live-page-update", ok)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "Service unavailable") {
		t.Errorf("with NATS down: %v, want 503", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("the 503 took %v", took)
	}

	srv.Restart()
	_, js2 := srv.Connect()
	if evs := storedEvents(t, topologytest.Stream(t, js2, top.Stream)); len(evs) != 1 {
		t.Errorf("%d events stored, want only the one sent while NATS was up", len(evs))
	}
}

// A replayed dead letter stored last on a channel carries an older revision; the next
// stamp still goes above the newest this worker stamped, even with its clock behind.
func TestJournalStampsAboveAReplayedLetter(t *testing.T) {
	js, top, stream := startStreams(t)
	j := NewJournal(js, stream, top)
	ctx := context.Background()
	if err := j.Append(ctx, []event.Event{post("live", "p", "1"), post("live", "p", "2")}); err != nil {
		t.Fatal(err)
	}
	evs := storedEvents(t, stream)
	old := evs[0]
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "live.events.live", Data: event.Append(nil, old),
		Header: nats.Header{jetstream.MsgIDHeader: {"direct"}}}); err != nil {
		t.Fatal(err)
	}
	j.now = func() time.Time { return time.Now().Add(-time.Hour) }
	for i := range 3 {
		if err := j.Append(ctx, []event.Event{post("live", "p", fmt.Sprint(3+i))}); err != nil {
			t.Fatal(err)
		}
	}
	evs = storedEvents(t, stream)
	if len(evs) != 6 {
		t.Fatalf("%d events stored, want 6", len(evs))
	}
	for i, newest := range []int64{evs[1].Revision, evs[3].Revision, evs[4].Revision} {
		if got := evs[3+i].Revision; got <= newest {
			t.Errorf("edit %d stamped %d, not above the newest stamped before it, %d", 3+i, got, newest)
		}
	}
}
