package publish_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/publish"
)

// discard answers every request at once, as a provider would, without checking it: the
// benchmarks measure the client's cost (encoding, signing, HTTP), not the server's.
func discard(b *testing.B, body string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchMessages(n, size int) []publish.Message {
	html := strings.Repeat("The crowd <cheers> & sings. ", size/28)
	msgs := make([]publish.Message, n)
	for i := range msgs {
		data := fmt.Sprintf(`{"renders":{"post-%d":{"show":true,"content":"<p>%s</p>"}},"removals":[]}`, i, html)
		msgs[i] = publish.Message{Channel: fmt.Sprintf("live-blog-%d", i), Data: []byte(data), ID: fmt.Sprintf("42-abc:%d", i)}
	}
	return msgs
}

func runPublish(b *testing.B, p interface {
	Publish(context.Context, []publish.Message) error
}, msgs []publish.Message) {
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		if err := p.Publish(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
}

// BenchmarkPusherBatch10 is one batch_events call of 10 messages of 1 KB.
func BenchmarkPusherBatch10(b *testing.B) {
	srv := discard(b, `{}`)
	p, err := publish.NewPusher(publish.PusherConfig{AppID: "1", Key: "k", Secret: "s", Host: strings.TrimPrefix(srv.URL, "http://"), Timeout: 5 * time.Second}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	runPublish(b, p, benchMessages(10, 1000))
}

// BenchmarkPieSocket1 is one PieSocket publish of a 1 KB message.
func BenchmarkPieSocket1(b *testing.B) {
	srv := discard(b, `{"success":true}`)
	p, err := publish.NewPieSocket(publish.PieSocketConfig{APIKey: "k", Secret: "s", APIURL: srv.URL + "/api/publish", Timeout: 5 * time.Second}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	runPublish(b, p, benchMessages(1, 1000))
}
