package broker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/consumer"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/fence"
)

// The memory a JetStream server spends per distinct channel it keeps: the event
// stream holds every channel seen within its MaxAge as a subject of its own
// (<prefix>.<partition>.<token>), and the revision fence one key per channel. Each
// benchmark starts an in-process server (nats-server as a library: its heap is this
// process's heap), publishes one message to each of N channels and reads HeapInuse
// after a GC, before and after. Two figures per N:
//
//   - hot: right after publishing, with the store's caches of the blocks just written
//     (a block's subject state is kept 2 minutes after its last use, its messages 10 s);
//   - cold: after a restart of the server on the same store, which is what a server
//     holding a week of channels keeps for them once those caches expired: the
//     per-subject index (one entry per subject still in the stream).
//
// Run with (one iteration each; they take seconds to a minute):
//
//	go test -run XXX -bench MemoryPerChannel -benchtime 1x -timeout 30m ./internal/broker/
//
// docs/benchmarks.md ("Memory per channel") holds the figures.
var channelCounts = []int{10_000, 50_000, 100_000}

func BenchmarkStreamMemoryPerChannel(b *testing.B) {
	benchmarkMemoryPerChannel(b, publishEvents)
}

// BenchmarkStreamMemoryPerChannelWithMsgID publishes with a Nats-Msg-Id, as the CMS
// does: the server also keeps each id for LIVE_DUPLICATE_WINDOW (2 minutes), after
// which the figure falls back to BenchmarkStreamMemoryPerChannel's.
func BenchmarkStreamMemoryPerChannelWithMsgID(b *testing.B) {
	benchmarkMemoryPerChannel(b, publishEventsWithMsgID)
}

// benchmarkMemoryPerChannel measures and reports the server's memory per channel
// for each of channelCounts, with publish putting one event on each channel.
func benchmarkMemoryPerChannel(b *testing.B, publish func(*testing.B, context.Context, jetstream.JetStream, int)) {
	for _, n := range channelCounts {
		b.Run(fmt.Sprintf("channels=%d", n), func(b *testing.B) {
			var hot, cold float64
			for i := 0; i < b.N; i++ {
				hot, cold = measureChannels(b, n, publish)
			}
			report(b, n, hot, cold)
		})
	}
}

// BenchmarkStreamMemoryAfterExpiry checks the cold figure without a restart: 50,000
// channels published with a Nats-Msg-Id, then the heap read every 10 s for 150 s, by
// when the de-duplication ids (2 minutes), the blocks' per-subject state (2 minutes)
// and message caches (10 s) have expired. It takes 2.5 minutes:
//
//	go test -run XXX -bench MemoryAfterExpiry -benchtime 1x ./internal/broker/
func BenchmarkStreamMemoryAfterExpiry(b *testing.B) {
	const n = 50_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		srv := brokertest.Start(b)
		_, js := srv.Connect()
		ctx := context.Background()
		top := broker.Topology{Stream: "LIVE_EVENTS", Prefix: "live.events", DLQStream: "LIVE_DLQ", DLQPrefix: "live.dlq",
			Partitions: broker.DefaultPartitions, Replicas: 1, DuplicateWindow: 2 * time.Minute, MaxAge: 7 * 24 * time.Hour}
		if err := top.Ensure(ctx, js); err != nil {
			b.Fatal(err)
		}
		before := heapInuse()
		publishEventsWithMsgID(b, ctx, js, n)
		hot := heapInuse()
		var readings []string
		start := time.Now()
		tick := time.NewTicker(10 * time.Second) // the expiries are minutes: sample, do not wait for an event
		for range tick.C {
			readings = append(readings, fmt.Sprintf("%v %.1f", time.Since(start).Round(time.Second), mib(heapInuse())))
			if time.Since(start) >= 150*time.Second {
				break
			}
		}
		tick.Stop()
		expired := heapInuse()
		b.Logf("%d channels: HeapInuse %.1f MiB empty, %.1f MiB after publishing, then (s MiB): %s", n, mib(before), mib(hot), strings.Join(readings, ", "))
		b.ReportMetric(0, "ns/op")
		b.ReportMetric((float64(hot)-float64(before))/n, "hot-B/channel")
		b.ReportMetric((float64(expired)-float64(before))/n, "expired-B/channel")
		b.ReportMetric((float64(expired)-float64(before))/n*10_000/(1<<20), "expired-MiB/10k-channels")
	}
}

func BenchmarkFenceMemoryPerChannel(b *testing.B) {
	benchmarkMemoryPerChannel(b, putFenceKeys)
}

func report(b *testing.B, n int, hot, cold float64) {
	b.ReportMetric(0, "ns/op") // the time is that of publishing N messages, not the point
	b.ReportMetric(hot, "hot-B/channel")
	b.ReportMetric(cold, "cold-B/channel")
	b.ReportMetric(hot*10_000/(1<<20), "hot-MiB/10k-channels")
	b.ReportMetric(cold*10_000/(1<<20), "cold-MiB/10k-channels")
}

// measureChannels starts a server, lets setup create what the worker creates, writes
// one message per channel with write, and returns the growth of the Go heap per
// channel right after writing (hot) and after a restart of the server (cold).
func measureChannels(b *testing.B, n int, write func(b *testing.B, ctx context.Context, js jetstream.JetStream, n int)) (hot, cold float64) {
	b.Helper()
	b.StopTimer()
	srv := brokertest.Start(b)
	_, js := srv.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	top := broker.Topology{Stream: "LIVE_EVENTS", Prefix: "live.events", DLQStream: "LIVE_DLQ", DLQPrefix: "live.dlq",
		Partitions: broker.DefaultPartitions, Replicas: 1, DuplicateWindow: 2 * time.Minute, MaxAge: 7 * 24 * time.Hour}
	if err := top.Ensure(ctx, js); err != nil {
		b.Fatal(err)
	}
	events, err := js.Stream(ctx, top.Stream)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := fence.Open(ctx, js, fence.Config{Bucket: "LIVE_REVISIONS", Replicas: 1, TTL: 720 * time.Hour, CacheTTL: time.Second,
		History: consumer.NewHistory(events, top), Redelivery: 7 * time.Second}, prometheus.NewRegistry(), zap.NewNop()); err != nil {
		b.Fatal(err)
	}
	before := heapInuse()

	b.StartTimer()
	write(b, ctx, js, n)
	b.StopTimer()
	after := heapInuse()

	srv.Restart()
	restarted := heapInuse()
	b.Logf("%d channels: HeapInuse %.1f MiB empty, %.1f MiB after writing, %.1f MiB after a restart",
		n, mib(before), mib(after), mib(restarted))
	return (float64(after) - float64(before)) / float64(n), (float64(restarted) - float64(before)) / float64(n)
}

// channelToken is the token of the i-th channel: 21 bytes, not sharing long prefixes
// with its neighbours (channel ids are page slugs or ids, not a counter).
func channelToken(i int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "channel %d", i))
	return event.Token("live-" + hex.EncodeToString(h[:8]))
}

// publishEvents publishes one small event to each of n channels, as the CMS does but
// without Nats-Msg-Id: the de-duplication ids cost memory for LIVE_DUPLICATE_WINDOW
// (2 minutes), not for the stream's MaxAge.
func publishEvents(b *testing.B, ctx context.Context, js jetstream.JetStream, n int) {
	b.Helper()
	publishChannels(b, ctx, js, n, false)
}

func publishEventsWithMsgID(b *testing.B, ctx context.Context, js jetstream.JetStream, n int) {
	b.Helper()
	publishChannels(b, ctx, js, n, true)
}

func publishChannels(b *testing.B, ctx context.Context, js jetstream.JetStream, n int, msgID bool) {
	b.Helper()
	top := broker.Topology{Prefix: "live.events"}
	for i := 0; i < n; i++ {
		tok := channelToken(i)
		ev := event.Event{Channel: tok, Renders: []event.Render{{ID: "post-1", Show: true,
			Content: `<div class="live-post"><p>One post of a live blog, about the size of a short update.</p></div>`}}, Revision: int64(i + 1)}
		msg := &nats.Msg{Subject: top.EventSubject(tok), Data: event.Append(nil, ev)}
		if msgID {
			msg.Header = nats.Header{nats.MsgIdHdr: {ev.Channel + ":" + strconv.FormatInt(ev.Revision, 10)}}
		}
		publishAsync(b, ctx, js, i, msg)
	}
	waitPublished(b, ctx, js, "LIVE_EVENTS", n)
}

// publishAsync publishes msg, the i-th, waiting for the acks of the previous
// thousand every thousand messages, so that the client never stalls.
func publishAsync(b *testing.B, ctx context.Context, js jetstream.JetStream, i int, msg *nats.Msg) {
	b.Helper()
	if i > 0 && i%1000 == 0 {
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			b.Fatalf("publishes not acknowledged: %v", ctx.Err())
		}
	}
	if _, err := js.PublishMsgAsync(msg); err != nil {
		b.Fatal(err)
	}
}

// putFenceKeys writes one fence entry (a channel's key, 32 bytes of revisions) for
// each of n channels.
func putFenceKeys(b *testing.B, ctx context.Context, js jetstream.JetStream, n int) {
	b.Helper()
	value := make([]byte, 32)
	for i := 0; i < n; i++ {
		publishAsync(b, ctx, js, i, &nats.Msg{Subject: "$KV.LIVE_REVISIONS." + fence.Key(channelToken(i)), Data: value})
	}
	waitPublished(b, ctx, js, "KV_LIVE_REVISIONS", n)
}

// waitPublished waits for the acks of the publishes and checks that the stream holds
// n subjects.
func waitPublished(b *testing.B, ctx context.Context, js jetstream.JetStream, stream string, n int) {
	b.Helper()
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		b.Fatalf("publishes not acknowledged: %v", ctx.Err())
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if info.State.Msgs != uint64(n) || info.State.NumSubjects != uint64(n) {
		b.Fatalf("stream %s holds %d messages on %d subjects, want %d of each", stream, info.State.Msgs, info.State.NumSubjects, n)
	}
}

// heapInuse is the Go heap in use after a full collection.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
