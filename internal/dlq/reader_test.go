package dlq

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/broker/topologytest"
	"github.com/liverelay/liverelay/internal/event"
)

// fixture is a real nats-server with liverelay's streams, a writer and a reader.
type fixture struct {
	t     *testing.T
	srv   *brokertest.Server
	js    jetstream.JetStream
	top   broker.Topology
	w     *Writer
	r     *Reader
	nextS uint64 // source sequence of the next letter written without one
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, js, top := topologytest.Start(t, 4)
	return &fixture{t: t, srv: srv, js: js, top: top, w: NewWriter(js, top.DLQPrefix, prometheus.NewRegistry()), r: NewReader(js, top.DLQStream, top.DLQPrefix), nextS: 1000}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// write stores l, filling in what a letter always has; it returns the letter as
// written.
func (f *fixture) write(l Letter) Letter {
	f.t.Helper()
	if l.Token == "" && l.Channel != "" {
		l.Token = event.Token(l.Channel)
	}
	if l.SourceSeqs == nil {
		f.nextS++
		l.SourceSeqs = []uint64{f.nextS}
	}
	if l.Detail == "" {
		l.Detail = "detail of " + string(l.Reason)
	}
	if err := f.w.Write(testCtx(f.t), l); err != nil {
		f.t.Fatal(err)
	}
	return l
}

// validLetter is a publish failure of one render of channel ch.
func validLetter(ch, post, html string, rev int64, reason Reason) Letter {
	ev := event.Event{Channel: ch, Renders: []event.Render{{ID: post, Show: true, Content: html}}, Revision: rev}
	return Letter{Channel: ch, Body: event.Append(nil, ev), Reason: reason, Provider: "pusher", Attempts: 1}
}

func (f *fixture) streamMsgs(name string) uint64 {
	f.t.Helper()
	return topologytest.Stream(f.t, f.js, name).CachedInfo().State.Msgs
}

func seqsOf(es []Entry) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestReaderFilters(t *testing.T) {
	f := newFixture(t)
	f.write(validLetter("a", "p1", "<p>1</p>", 1, ReasonPermanent))                   // 1
	f.write(validLetter("news.uk/live", "p2", "<p>2</p>", 2, ReasonExhausted))        // 2
	f.write(Letter{Token: "a", Body: []byte("{oops"), Reason: event.ReasonMalformed}) // 3
	f.write(validLetter("a", "p3", "<p>3</p>", 3, ReasonExhausted))                   // 4
	f.write(validLetter("news.uk/live", "p4", "<p>4</p>", 4, ReasonPermanent))        // 5
	f.write(Letter{Body: []byte("\x00\xff"), Reason: event.ReasonMalformed})          // 6, _unknown
	f.write(validLetter("b", "p5", "<p>5</p>", 5, ReasonPermanent))                   // 7

	all, err := f.r.List(testCtx(t), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(all); !reflect.DeepEqual(got, []uint64{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("all letters: %v", got)
	}
	// Stored times, to filter on without sleeping.
	t4, t5 := all[3].Time, all[4].Time

	tests := []struct {
		name   string
		filter Filter
		want   []uint64
	}{
		{"everything", Filter{}, []uint64{1, 2, 3, 4, 5, 6, 7}},
		{"channel", Filter{Channel: "a"}, []uint64{1, 3, 4}},
		{"channel with escaped bytes", Filter{Channel: "news.uk/live"}, []uint64{2, 5}},
		{"channel without letters", Filter{Channel: "zzz"}, []uint64{}},
		{"reason", Filter{Reason: ReasonPermanent}, []uint64{1, 5, 7}},
		{"unknown reason", Filter{Reason: "no-such-reason"}, []uint64{}},
		{"channel and reason", Filter{Channel: "a", Reason: ReasonExhausted}, []uint64{4}},
		{"since", Filter{Since: t4}, []uint64{4, 5, 6, 7}},
		{"since after the last letter", Filter{Since: time.Now().Add(time.Hour)}, []uint64{}},
		{"until", Filter{Until: t4}, []uint64{1, 2, 3, 4}},
		{"until before the first letter", Filter{Until: all[0].Time.Add(-time.Hour)}, []uint64{}},
		{"since and until", Filter{Since: t4, Until: t5}, []uint64{4, 5}},
		{"limit", Filter{Limit: 2}, []uint64{1, 2}},
		{"limit after filtering", Filter{Reason: ReasonPermanent, Limit: 2}, []uint64{1, 5}},
		{"limit with channel and since", Filter{Channel: "news.uk/live", Since: t4, Limit: 1}, []uint64{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got, err := f.r.List(testCtx(t), tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(seqsOf(got), tt.want) {
				t.Fatalf("got %v, want %v", seqsOf(got), tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("the read took %v", d)
			}
		})
	}
}

func TestReaderParsesLetters(t *testing.T) {
	f := newFixture(t)
	first := time.Date(2026, 11, 29, 15, 0, 0, 123456789, time.UTC)
	want := f.write(Letter{
		Channel: "news.uk/live", Body: []byte(`{"v":1}`), Reason: ReasonExhausted, Detail: "pusher: 503 Service Unavailable",
		Provider: "pusher", Attempts: 7, FirstFailure: first, LastFailure: first.Add(time.Minute),
		SourceSeqs: []uint64{11, 12, 19}, SourceSubject: "live.events.3.news%2Euk%2Flive",
	})
	es, err := f.r.List(testCtx(t), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 {
		t.Fatalf("%d letters", len(es))
	}
	e := es[0]
	if e.Seq != 1 || e.Subject != "live.dlq.news%2Euk%2Flive" || time.Since(e.Time) > time.Minute || e.Header.Get(HeaderReason) != string(ReasonExhausted) {
		t.Fatalf("entry %d %q %v %v", e.Seq, e.Subject, e.Time, e.Header)
	}
	if !reflect.DeepEqual(e.Letter, want) {
		t.Fatalf("letter read back\n got %+v\nwant %+v", e.Letter, want)
	}
	got, err := f.r.Get(testCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Letter, want) || got.Seq != 1 || !got.Time.Equal(e.Time) {
		t.Fatalf("Get: %+v", got)
	}
	if _, err := f.r.Get(testCtx(t), 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing letter: %v, want ErrNotFound", err)
	}
}

// A read covers the letters stored when it starts: letters written while it runs are
// left for the next one, and the read does not wait for more.
func TestReaderStopsAtLastSequence(t *testing.T) {
	f := newFixture(t)
	f.writeLetters(0, 3)
	var seen []uint64
	err := f.r.Each(testCtx(t), Filter{Channel: "a"}, func(e Entry) error {
		if e.Seq == 1 {
			f.writeLetters(3, 6)
		}
		seen = append(seen, e.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(seen, []uint64{1, 2, 3}) {
		t.Fatalf("read %v, want the 3 letters stored when the read began", seen)
	}
	if n := f.streamMsgs("LIVE_DLQ"); n != 6 {
		t.Fatalf("%d letters stored", n)
	}
}

// Reads leave nothing behind on the server and do not move any other reader.
func TestReaderDoesNotDisturbOthers(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	f.writeLetters(0, 5)
	other, err := f.js.CreateOrUpdateConsumer(ctx, "LIVE_DLQ", jetstream.ConsumerConfig{Durable: "ops-dashboard", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	before, err := other.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := f.r.List(ctx, Filter{}); err != nil {
			t.Fatal(err)
		}
	}
	after, err := other.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.NumPending != before.NumPending || after.Delivered != before.Delivered || after.NumAckPending != 0 {
		t.Fatalf("the other consumer moved: before %+v, after %+v", before.Delivered, after.Delivered)
	}
	s := topologytest.Stream(t, f.js, f.top.DLQStream)
	brokertest.WaitFor(t, 20*time.Second, "the reader's consumers to be gone, leaving the other", func() bool {
		info, err := s.Info(ctx)
		return err == nil && info.State.Consumers == 1
	})
}

func TestReaderEmptyAndMissingStream(t *testing.T) {
	f := newFixture(t)
	got, err := f.r.List(testCtx(t), Filter{Channel: "a"})
	if err != nil || len(got) != 0 {
		t.Fatalf("empty stream: %v, %v", got, err)
	}
	_, err = NewReader(f.js, "NO_SUCH_DLQ", "live.dlq").List(testCtx(t), Filter{})
	if err == nil || !strings.Contains(err.Error(), "NO_SUCH_DLQ") || !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("missing stream: %v", err)
	}
}

func TestReaderStopsOnCancel(t *testing.T) {
	f := newFixture(t)
	f.writeLetters(0, 3)
	ctx, cancel := context.WithCancel(testCtx(t))
	n := 0
	err := f.r.Each(ctx, Filter{}, func(Entry) error {
		n++
		cancel()
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) || n != 1 {
		t.Fatalf("after cancel: %d letters, %v", n, err)
	}
}
