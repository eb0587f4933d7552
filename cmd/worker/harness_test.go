package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/browsertest"
	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/publish/pushertest"
	"github.com/liverelay/liverelay/internal/workload"
)

// harness is one end-to-end set-up: a real nats-server in-process, a fake Pusher that
// checks signatures and limits, and workers run in-process against both.
type harness struct {
	t      *testing.T
	nats   *brokertest.Server
	pusher *pushertest.Server
	js     jetstream.JetStream
	cfg    config.Config
}

// startBroker starts a nats-server for t and returns it, a JetStream client of it
// and the default settings, pointing at it.
func startBroker(t *testing.T) (*brokertest.Server, jetstream.JetStream, config.Config) {
	t.Helper()
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	cfg := config.Default()
	cfg.NATSURL = srv.URL()
	return srv, js, cfg
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	srv, js, cfg := startBroker(t)
	cfg.HTTPAddr = ""
	cfg.Provider = config.ProviderPusher
	cfg.Pusher = publish.PusherConfig{AppID: "4242", Key: "app-key", Secret: "app-secret", Host: "", Secure: false}
	cfg.BatchWindow = 20 * time.Millisecond
	cfg.Partitions = 4
	cfg.AckWait = 5 * time.Second
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.Retry.Initial = 20 * time.Millisecond
	cfg.Retry.Max = 200 * time.Millisecond
	fake := pushertest.New(t, cfg.Pusher.AppID, cfg.Pusher.Key, cfg.Pusher.Secret)
	cfg.Pusher.Host = fake.Host()
	return &harness{t: t, nats: srv, pusher: fake, js: js, cfg: cfg}
}

// startWorker runs a worker in-process; the returned stop cancels it (as SIGTERM does)
// and waits for it to return, failing the test if it returned an error.
func (h *harness) startWorker() (stop func()) {
	h.t.Helper()
	if err := h.cfg.Validate(); err != nil {
		h.t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := h.cfg // the test may change h.cfg for the next worker
	go func() { done <- run(ctx, cfg, io.Discard, zaptest.NewLogger(h.t).Named("worker")) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("worker returned %v", err)
			}
		case <-time.After(30 * time.Second):
			h.t.Fatal("worker did not stop within 30s")
		}
	}
	h.t.Cleanup(stop)
	return stop
}

// publish sends an event as the CMS does, with Nats-Msg-Id <channel>:<revision>.
func (h *harness) publish(ev event.Event) {
	h.t.Helper()
	h.publishRaw(event.Token(ev.Channel), event.Append(nil, ev), ev.Channel+":"+strconv.FormatInt(ev.Revision, 10))
}

// publishRaw publishes a body as it is. Like a CMS, it tries again (same Nats-Msg-Id)
// when JetStream does not answer in time, as happens on a loaded machine.
func (h *harness) publishRaw(token string, body []byte, msgID string) {
	h.t.Helper()
	msg := &nats.Msg{Subject: h.cfg.SubjectPrefix + "." + token, Data: body, Header: nats.Header{}}
	if msgID != "" {
		msg.Header.Set(nats.MsgIdHdr, msgID)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = h.js.PublishMsg(ctx, msg)
		cancel()
		if err == nil || msgID == "" {
			break
		}
	}
	if err != nil {
		h.t.Fatalf("publish: %v", err)
	}
}

// waitDelivered waits until every partition consumer has nothing pending or unacked.
func (h *harness) waitDelivered(timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		left, err := h.undelivered()
		if err == nil && left == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("after %v, %d messages are still pending or unacked (last error %v)", timeout, left, err)
		}
		<-tick.C
	}
}

// undelivered is how many events the partition consumers have not delivered, or
// delivered and not had acked.
func (h *harness) undelivered() (int, error) {
	pending, ackPending, err := h.consumerCounts()
	return pending + ackPending, err
}

// consumerCounts sums, over the partition consumers, the events not delivered yet and
// those delivered and not acked.
func (h *harness) consumerCounts() (pending, ackPending int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for p := 0; p < h.cfg.Partitions; p++ {
		c, err := h.js.Consumer(ctx, h.cfg.Stream, fmt.Sprintf("%s_P%d", h.cfg.Stream, p))
		if err != nil {
			return -1, -1, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return -1, -1, err
		}
		pending += int(info.NumPending)
		ackPending += info.NumAckPending
	}
	return pending, ackPending, nil
}

// deadLetters returns every message of the dead-letter stream.
func (h *harness) deadLetters() []jetstream.RawStreamMsg {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := h.js.Stream(ctx, h.cfg.DLQStream)
	if err != nil {
		h.t.Fatalf("dlq stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		out = append(out, *m)
	}
	return out
}

// pages replays what the fake Pusher received through the browser model.
func (h *harness) pages() map[string]*browsertest.Page {
	h.t.Helper()
	pages := map[string]*browsertest.Page{}
	for _, e := range h.pusher.Events() {
		if e.Name != "live-page-update" {
			h.t.Fatalf("event name %q", e.Name)
		}
		show(h.t, pages, e.Channel, e.Data)
	}
	return pages
}

// pageOf is channel ch's page in pages, added empty when there is none.
func pageOf(pages map[string]*browsertest.Page, ch string) *browsertest.Page {
	p := pages[ch]
	if p == nil {
		p = &browsertest.Page{}
		pages[ch] = p
	}
	return p
}

// show applies data, an update a provider delivered to channel ch, to that channel's
// page in pages as Wagtail Live's browser code does; it fails t where the browser
// would throw.
func show(t *testing.T, pages map[string]*browsertest.Page, ch, data string) {
	t.Helper()
	if err := pageOf(pages, ch).Apply([]byte(data)); err != nil {
		t.Fatalf("channel %s: %v in %s", ch, err, data)
	}
}

// cms is what the CMS's pages look like after its events, applied one by one.
type cms map[string]*browsertest.Page

func (c cms) apply(t *testing.T, ev event.Event) {
	t.Helper()
	u := merge.New(ev.Channel)
	u.Add(ev)
	if err := pageOf(c, ev.Channel).Apply(u.AppendJSON(nil)); err != nil {
		t.Fatal(err)
	}
}

// send makes n events with gen, as the CMS makes them: it applies each to c's pages,
// hands it to publish (h.publish, or h.publishRetrying through an outage), then calls
// after, when not nil, with the event and its index, counting from 0.
func (c cms) send(t *testing.T, gen *workload.Generator, n int, publish func(event.Event), after func(i int, ev event.Event)) {
	t.Helper()
	for i := range n {
		ev := gen.Next()
		c.apply(t, ev)
		publish(ev)
		if after != nil {
			after(i, ev)
		}
	}
}

func (c cms) check(t *testing.T, got map[string]*browsertest.Page) {
	t.Helper()
	for ch, want := range c {
		g := got[ch]
		if g == nil {
			g = &browsertest.Page{}
		}
		if !g.Equal(want) {
			t.Errorf("channel %s: readers see %d posts, the CMS has %d; first difference: %s", ch, len(g.Posts), len(want.Posts), firstDiff(g, want))
		}
	}
}

func firstDiff(got, want *browsertest.Page) string {
	for i := 0; i < max(len(got.Posts), len(want.Posts)); i++ {
		switch {
		case i >= len(got.Posts):
			return fmt.Sprintf("position %d missing %s", i, want.Posts[i].ID)
		case i >= len(want.Posts):
			return fmt.Sprintf("position %d has extra %s", i, got.Posts[i].ID)
		case got.Posts[i] != want.Posts[i]:
			return fmt.Sprintf("position %d: got %s (%d bytes), want %s (%d bytes)", i, got.Posts[i].ID, len(got.Posts[i].Content), want.Posts[i].ID, len(want.Posts[i].Content))
		}
	}
	return "none"
}
