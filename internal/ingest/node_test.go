package ingest

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/ingest/ingesttest"
)

// Pusher's official Node library triggers into the ingest as into Pusher: events to
// one and several channels and a batch are stored as the updates it sent, and
// refusals come back to it with Pusher's status and message.
func TestNodeClient(t *testing.T) {
	store := &fakeStore{}
	h, err := NewHandler(Config{Credentials: testCreds, EventName: "live-page-update", MaxBytes: 64 << 10},
		store, prometheus.NewRegistry(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	base := startServer(t, h)

	post := map[string]any{"renders": map[string]any{"p1": map[string]any{"show": true, "content": `<div class="live-post"><p>Kick-off "now"</p></div>`}}, "removals": []string{}}
	// Larger than Pusher's 10 KB: the Node library sends it, and the ingest takes it.
	big := map[string]any{"renders": map[string]any{"long": map[string]any{"show": true, "content": strings.Repeat("<p>minute by minute</p>", 1000)}}, "removals": []string{}}
	removal := map[string]any{"renders": map[string]any{}, "removals": []string{"p0"}}
	calls := []ingesttest.Call{
		{Channels: "live-blog-2026", Event: "live-page-update", Data: post},
		{Channels: []string{"a", "b"}, Event: "live-page-update", Data: removal},
		{Batch: []ingesttest.BatchEvent{{Channel: "x", Name: "live-page-update", Data: post}, {Channel: "y", Name: "live-page-update", Data: removal}}},
		{Channels: "c", Event: "client-typing", Data: post},
		{Channels: "c", Event: "live-page-update", Data: post, Secret: "wrong"},
		{Channels: "c", Event: "live-page-update", Data: map[string]any{"text": "hi"}},
		{Channels: "big", Event: "live-page-update", Data: big},
	}
	want := []struct {
		status int
		body   string
	}{
		{200, "{}"}, {200, "{}"}, {200, "{}"},
		{400, `event name "client-typing" is not accepted`},
		{401, "Invalid signature"},
		{400, "data is not a Wagtail Live update"},
		{200, "{}"},
	}
	results := ingesttest.Node(t, base, ingesttest.Credentials{AppID: testCreds.AppID, Key: testCreds.Key, Secret: testCreds.Secret}, calls)
	for i, got := range results {
		if got.Status != want[i].status || !strings.Contains(got.Body, want[i].body) {
			t.Errorf("call %d: %d %q, want %d with %q", i, got.Status, got.Body, want[i].status, want[i].body)
		}
	}

	evs, _ := store.stored()
	var channels []string
	for _, ev := range evs {
		channels = append(channels, ev.Channel)
	}
	if strings.Join(channels, " ") != "live-blog-2026 a b x y big" {
		t.Fatalf("stored channels %q", channels)
	}
	if r := evs[0].Renders; len(r) != 1 || r[0].Content != `<div class="live-post"><p>Kick-off "now"</p></div>` || !r[0].Show {
		t.Errorf("stored render %+v", r)
	}
	if evs[4].Removals[0] != "p0" {
		t.Errorf("stored batch removal %+v", evs[4])
	}
}
