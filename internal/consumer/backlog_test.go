package consumer

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/broker/topologytest"
	"github.com/liverelay/liverelay/internal/event"
)

// The backlog gauges exist at zero for every partition from the start, and show what
// each partition consumer has undelivered and unacked, whether or not a worker pulls
// it.
func TestBacklogReadsEveryPartition(t *testing.T) {
	_, js, top := topologytest.Start(t, 4)
	ctx := context.Background()
	_, stream := topologytest.Consumers(t, js, top, broker.ConsumerConfig{AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 100, PinnedTTL: 30 * time.Second})
	reg := prometheus.NewRegistry()
	b := NewBacklog(stream, top, time.Hour, reg)
	if n := len(gauges(t, reg, "liverelay_partition_pending_messages")) + len(gauges(t, reg, "liverelay_partition_ack_pending_messages")); n != 2*top.Partitions {
		t.Fatalf("%d partition series before the first read, want %d (every partition at zero)", n, 2*top.Partitions)
	}

	const events = 20
	for i := range events {
		ch := "channel-" + strconv.Itoa(i)
		body := event.Append(nil, event.Event{Channel: ch, Renders: []event.Render{{ID: "p", Show: true, Content: "x"}}})
		if _, err := js.Publish(ctx, top.EventSubject(event.Token(ch)), body); err != nil {
			t.Fatal(err)
		}
	}
	// Take (and leave unacked) what partition 0 has.
	cons, err := js.Consumer(ctx, top.Stream, top.ConsumerName(0))
	if err != nil {
		t.Fatal(err)
	}
	taken := len(topologytest.Pull(t, cons, events, 2*time.Second))
	if taken == 0 {
		t.Fatal("partition 0 got none of the events: pick other channel names")
	}

	b.read(ctx)
	pendingBy, ackPendingBy := gauges(t, reg, "liverelay_partition_pending_messages"), gauges(t, reg, "liverelay_partition_ack_pending_messages")
	pending := 0.0
	for _, v := range pendingBy {
		pending += v
	}
	if got := pendingBy["0"]; got != 0 {
		t.Errorf("partition 0 pending = %v, want 0 (all delivered)", got)
	}
	if got := ackPendingBy["0"]; got != float64(taken) {
		t.Errorf("partition 0 ack pending = %v, want %d", got, taken)
	}
	if pending != float64(events-taken) {
		t.Errorf("pending over all partitions = %v, want %d", pending, events-taken)
	}
}

// gauges returns the values of a gauge family by its partition label.
func gauges(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "partition" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}
