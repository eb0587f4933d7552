package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pusher "github.com/pusher/pusher-http-go/v5"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/ingest/ingesttest"
	"github.com/liverelay/liverelay/internal/publish/pushertest"
	"github.com/liverelay/liverelay/internal/workload"
)

// The CMS's credentials for the ingest; they differ from the fake Pusher's, as a
// site's would.
const ingestApp, ingestKey, ingestSecret = "77", "cms-key", "cms-secret"

// withIngest turns the harness's next worker's ingest on at a free address.
func (h *harness) withIngest() string {
	h.cfg.Ingest.Addr = freeAddr(h.t)
	h.cfg.Ingest.AppID, h.cfg.Ingest.Key, h.cfg.Ingest.Secret = ingestApp, ingestKey, ingestSecret
	return h.cfg.Ingest.Addr
}

// cmsClient is the CMS's Pusher publisher pointed at hostPort: only the host and TLS
// (off) differ from Pusher's own settings. It takes updates larger than Pusher's
// 10 KB, as the ingest does.
func cmsClient(hostPort string) *pusher.Client {
	return &pusher.Client{AppID: ingestApp, Key: ingestKey, Secret: ingestSecret, Host: hostPort, Secure: false,
		OverrideMaxMessagePayloadKB: 256}
}

// updateData is what Wagtail Live's Pusher publisher sends as data: the event's
// renders and removals, no revision.
func updateData(ev event.Event) string {
	b := append([]byte(`{"renders":`), event.AppendRenders(nil, ev.Renders)...)
	b = append(b, `,"removals":`...)
	b = event.AppendRemovals(b, ev.Removals)
	return string(append(b, '}'))
}

// trigger sends ev through the CMS client.
func trigger(t *testing.T, c *pusher.Client, ev event.Event) {
	t.Helper()
	if err := c.Trigger(ev.Channel, "live-page-update", updateData(ev)); err != nil {
		t.Fatalf("trigger on %s: %v", ev.Channel, err)
	}
}

// waitListening waits until a worker's ingest takes connections at addr.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ingest at %s after 30s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A CMS that keeps its Pusher publisher, pointed at the ingest: what readers see
// through the relay and the (fake) Pusher equals what the CMS has, events of one
// channel and batches of several alike.
func TestIngestEndToEnd(t *testing.T) {
	h := newHarness(t)
	addr := h.withIngest()
	h.startWorker()
	waitListening(t, addr)
	c := cmsClient(addr)

	gen := workload.New(workload.Config{Channels: 5, Seed: 7, NewShare: 0.4, EditShare: 0.45, RemoveShare: 0.15,
		BurstShare: 0.3, BurstLen: 4, MinSize: 100, MaxSize: 9000, MaxLive: 30})
	want := cms{}
	for range 150 {
		ev := gen.Next()
		trigger(t, c, ev)
		want.apply(t, ev)
	}
	var batch []pusher.Event
	for range 10 {
		ev := gen.Next()
		batch = append(batch, pusher.Event{Channel: ev.Channel, Name: "live-page-update", Data: updateData(ev)})
		want.apply(t, ev)
	}
	if _, err := c.TriggerBatch(batch); err != nil {
		t.Fatalf("TriggerBatch: %v", err)
	}
	h.waitDelivered(60 * time.Second)
	want.check(t, h.pages())
	if n := len(h.deadLetters()); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// roundRobin is one address in front of several ingests, each request going to the
// next, as a load balancer spreads a CMS's requests over the workers.
func roundRobin(t *testing.T, addrs ...string) string {
	t.Helper()
	var proxies []*httputil.ReverseProxy
	for _, a := range addrs {
		proxies = append(proxies, httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: a}))
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[int(n.Add(1)-1)%len(proxies)].ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Two workers serve the ingest behind one round-robin address; the CMS edits one post
// again and again, each edit reaching the other worker than the one before. The
// revisions the workers stamp follow the order of the edits, so readers end at the
// last edit; and an old edit that failed, dead-lettered, and is replayed after newer
// ones were delivered is fenced, not published over them.
func TestIngestTwoWorkersOnePost(t *testing.T) {
	h := newHarness(t)
	a := h.withIngest()
	h.cfg.WorkerName = "ingest-a"
	h.startWorker()
	b := h.withIngest()
	h.cfg.WorkerName = "ingest-b"
	h.startWorker()
	waitListening(t, a)
	waitListening(t, b)
	c := cmsClient(roundRobin(t, a, b))

	edit := func(n int) event.Event {
		return event.Event{Channel: "derby-live", Renders: []event.Render{{ID: "post-1", Show: true, Content: "<p>edit " + itoa(n) + "</p>"}}, Removals: []string{}}
	}
	want := cms{}
	send := func(n int) {
		t.Helper()
		trigger(t, c, edit(n))
		want.apply(t, edit(n))
	}
	for n := range 10 {
		send(n)
	}
	h.waitDelivered(30 * time.Second)

	// Edit 10 fails at the provider, as with a revoked key, and is dead-lettered.
	h.pusher.SetScript(func(_ int64, events []pushertest.Event) pushertest.Fault {
		for _, e := range events {
			if strings.Contains(e.Data, "<p>edit 10</p>") {
				return pushertest.Fault{Status: http.StatusUnauthorized}
			}
		}
		return pushertest.Fault{}
	})
	send(10)
	h.waitDelivered(30 * time.Second)
	letters := h.deadLetters()
	if len(letters) != 1 || dlq.Reason(letters[0].Header.Get(dlq.HeaderReason)) != dlq.ReasonPermanent {
		t.Fatalf("want edit 10 dead-lettered, got %d letters", len(letters))
	}
	h.pusher.SetScript(nil)
	for n := 11; n < 30; n++ {
		send(n)
	}
	h.waitDelivered(30 * time.Second)
	want.check(t, h.pages())
	if got := h.pages()["derby-live"]; got == nil || len(got.Posts) != 1 || got.Posts[0].Content != "<p>edit 29</p>" {
		t.Fatalf("readers see %+v, want the last edit", got)
	}

	before := len(h.pusher.Events())
	code, out, errOut := runWorker(t, "replay", "--nats", h.cfg.NATSURL)
	if code != 0 || !strings.Contains(out, "replay: 1 replayed") {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errOut)
	}
	h.waitDelivered(30 * time.Second)
	if got := h.pages()["derby-live"]; got.Posts[0].Content != "<p>edit 29</p>" {
		t.Fatalf("after replaying edit 10 readers see %q: the page rolled back", got.Posts[0].Content)
	}
	if n := len(h.pusher.Events()) - before; n != 0 {
		t.Errorf("the replay published %d events; the fence should have dropped edit 10", n)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// The same through Pusher's official Node library: a CMS on Node keeps its
// publisher, and readers' pages end as the CMS has them.
func TestIngestEndToEndNode(t *testing.T) {
	h := newHarness(t)
	addr := h.withIngest()
	h.startWorker()
	waitListening(t, addr)

	gen := workload.New(workload.Config{Channels: 4, Seed: 11, NewShare: 0.4, EditShare: 0.45, RemoveShare: 0.15,
		BurstShare: 0.3, BurstLen: 4, MinSize: 100, MaxSize: 9000, MaxLive: 30})
	want := cms{}
	var calls []ingesttest.Call
	for range 80 {
		ev := gen.Next()
		// An object, as a CMS hands its client; its keys keep their order in JavaScript.
		calls = append(calls, ingesttest.Call{Channels: ev.Channel, Event: "live-page-update", Data: json.RawMessage(updateData(ev))})
		want.apply(t, ev)
	}
	var batch []ingesttest.BatchEvent
	for range 10 {
		ev := gen.Next()
		batch = append(batch, ingesttest.BatchEvent{Channel: ev.Channel, Name: "live-page-update", Data: json.RawMessage(updateData(ev))})
		want.apply(t, ev)
	}
	calls = append(calls, ingesttest.Call{Batch: batch})
	for i, r := range ingesttest.Node(t, "http://"+addr, ingesttest.Credentials{AppID: ingestApp, Key: ingestKey, Secret: ingestSecret}, calls) {
		if r.Status != http.StatusOK {
			t.Fatalf("call %d: %d %s", i, r.Status, r.Body)
		}
	}
	h.waitDelivered(60 * time.Second)
	want.check(t, h.pages())
	if n := len(h.deadLetters()); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}
