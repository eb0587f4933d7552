package ingest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker/topologytest"
)

// BenchmarkIngest measures the ingest as a CMS meets it: pusher-http-go's Trigger,
// from concurrent senders, to the 200 that follows JetStream's PubAck, through the
// real HTTP server, signature check, decoding, revision stamping and a real
// nats-server storing to disk. It reports requests per second and the latency
// percentiles of single requests (one event of about 1 KB each).
//
// The yardstick sub-benchmarks publish the same events straight to JetStream, one
// PubAck awaited per event and sender, without HTTP, signature or stamping: the floor
// the ingest's figures are to be read against.
//
//	go test -run '^$' -bench Ingest -benchtime 3000x ./internal/ingest
func BenchmarkIngest(b *testing.B) {
	for _, fsync := range []bool{true, false} {
		for _, channels := range []int{100, 1} {
			for _, senders := range []int{1, 16} {
				for _, path := range []string{"ingest", "jetstream"} {
					name := fmt.Sprintf("fsync=%v/channels=%d/senders=%d/%s", map[bool]string{true: "always", false: "2m"}[fsync], channels, senders, path)
					b.Run(name, func(b *testing.B) { benchIngest(b, fsync, channels, senders, path == "jetstream") })
				}
			}
		}
	}
}

func benchIngest(b *testing.B, fsyncAlways bool, channels, senders int, yardstick bool) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: b.TempDir(), SyncAlways: fsyncAlways, NoSigs: true, NoLog: true})
	if err != nil {
		b.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		b.Fatal("nats-server not ready")
	}
	b.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	top := topologytest.Ensure(b, js, 4)
	stream := topologytest.Stream(b, js, top.Stream)
	h, err := NewHandler(Config{Credentials: testCreds, EventName: "live-page-update", MaxBytes: 256 << 10},
		NewJournal(js, stream, top), nil, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	base := startServer(b, h)
	c := goClientAt(base, testCreds)
	c.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	html := strings.Repeat("<p>The match goes on &amp; the crowd cheers.</p>", 20) // ~1 KB
	data := func(i int) string {
		return `{"renders":{"post-` + strconv.Itoa(i%50) + `":{"show":true,"content":"` + html + `"}},"removals":[]}`
	}

	latencies := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	b.ResetTimer()
	start := time.Now()
	for range senders {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				t0 := time.Now()
				channel := "live-blog-" + strconv.Itoa(i%channels)
				var err error
				if yardstick {
					body := `{"v":1,"channel":"` + channel + `",` + data(i)[1:]
					_, err = js.PublishMsg(context.Background(), &nats.Msg{Subject: "live.events." + channel, Data: []byte(body),
						Header: nats.Header{jetstream.MsgIDHeader: {channel + ":" + strconv.Itoa(i)}}})
				} else {
					err = c.Trigger(channel, "live-page-update", data(i))
				}
				if err != nil {
					errs <- err
					return
				}
				latencies[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil || info.State.Msgs != uint64(b.N) {
		b.Fatalf("%v events stored, want %d (%v)", info.State.Msgs, b.N, err)
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
}
