package broker

import (
	"context"
	"hash/fnv"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

func testTopology(partitions int) Topology {
	return Topology{Stream: "LIVE_EVENTS", Prefix: "live.events", DLQStream: "LIVE_DLQ", DLQPrefix: "live.dlq",
		Partitions: partitions, Replicas: 1, DuplicateWindow: time.Minute, MaxAge: time.Hour}
}

func TestEnsurePartitionsChannelsByFNV(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	ctx := context.Background()
	top := testTopology(8)
	for i := 0; i < 2; i++ { // idempotent
		if err := top.Ensure(ctx, js); err != nil {
			t.Fatalf("Ensure #%d: %v", i+1, err)
		}
	}
	if err := top.EnsureConsumers(ctx, js, ConsumerConfig{AckWait: time.Second, MaxDeliver: 5, MaxAckPending: 100, PinnedTTL: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"live-blog-2026", "news.uk/live", "a", "b", "c"} {
		tok := event.Token(ch)
		ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: top.EventSubject(tok), Data: []byte("{}"), Header: nats.Header{"Nats-Msg-Id": {ch}}})
		if err != nil {
			t.Fatalf("publish %s: %v", ch, err)
		}
		msg, err := js.Stream(ctx, top.Stream)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := msg.GetMsg(ctx, ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		h := fnv.New32a()
		h.Write([]byte(tok))
		want := "live.events." + strconv.Itoa(int(h.Sum32()%8)) + "." + tok
		if raw.Subject != want || top.StoredSubject(tok) != want {
			t.Fatalf("stored subject %q, StoredSubject %q, want %q", raw.Subject, top.StoredSubject(tok), want)
		}
		p, gotTok, err := top.SplitSubject(raw.Subject)
		if err != nil || gotTok != tok || top.PartitionFilter(p) != "live.events."+strconv.Itoa(p)+".*" {
			t.Fatalf("SplitSubject(%q) = %d %q %v", raw.Subject, p, gotTok, err)
		}
	}
	// A duplicate Nats-Msg-Id is dropped by the stream.
	ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: top.EventSubject("a"), Data: []byte("{}"), Header: nats.Header{"Nats-Msg-Id": {"a"}}})
	if err != nil || !ack.Duplicate {
		t.Fatalf("duplicate publish: ack %+v err %v", ack, err)
	}
	// A subject of more than one token is no event subject: nothing stores it.
	if _, err := js.Publish(ctx, "live.events.a.b", []byte("{}")); err == nil {
		t.Fatal("publishing to live.events.a.b must fail: no stream captures it")
	}
}

func TestEnsureRefusesToChangePartitions(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	ctx := context.Background()
	eight := testTopology(8)
	if err := eight.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	four := testTopology(4)
	err := four.Ensure(ctx, js)
	if err == nil || !strings.Contains(err.Error(), "LIVE_PARTITIONS=4") || !strings.Contains(err.Error(), "partition(8,1)") {
		t.Fatalf("Ensure with other partitions: %v", err)
	}
	// Unset, it takes the stream's count.
	auto := testTopology(0)
	if err := auto.Ensure(ctx, js); err != nil || auto.Partitions != 8 {
		t.Fatalf("Ensure with partitions unset on an 8-partition stream: %v, partitions %d", err, auto.Partitions)
	}
}

func TestEnsureDefaultsPartitionsOfANewStream(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	top := testTopology(0)
	if err := top.Ensure(context.Background(), js); err != nil {
		t.Fatal(err)
	}
	if top.Partitions != DefaultPartitions {
		t.Fatalf("a new stream got %d partitions, want %d", top.Partitions, DefaultPartitions)
	}
}

func TestStreamPartitionsReadsTheTransform(t *testing.T) {
	for _, n := range []int{1, 4, DefaultPartitions, 1000} {
		top := testTopology(n)
		cfg := jetstream.StreamConfig{SubjectTransform: &jetstream.SubjectTransformConfig{Source: top.Prefix + ".*", Destination: top.transform()}}
		if got, ok := StreamPartitions(cfg); !ok || got != n {
			t.Errorf("transform %q: got %d, %v; want %d", top.transform(), got, ok, n)
		}
	}
	for _, dest := range []string{"", "live.events.{{wildcard(1)}}", "live.events.{{partition(0,1)}}.{{wildcard(1)}}",
		"live.events.{{partition(-3,1)}}.{{wildcard(1)}}", "live.events.{{partition(x,1)}}.{{wildcard(1)}}", "live.events.{{partition(4)}}"} {
		cfg := jetstream.StreamConfig{SubjectTransform: &jetstream.SubjectTransformConfig{Source: "live.events.*", Destination: dest}}
		if got, ok := StreamPartitions(cfg); ok {
			t.Errorf("transform %q: got %d partitions, want none", dest, got)
		}
	}
	if got, ok := StreamPartitions(jetstream.StreamConfig{}); ok {
		t.Errorf("no transform: got %d partitions, want none", got)
	}
}

func TestSplitSubjectRejects(t *testing.T) {
	top := testTopology(8)
	for _, s := range []string{"other.3.a", "live.events.a", "live.events.8.a", "live.events.-1.a", "live.events.x.a", "live.events.3.", "live.events.3.a.b"} {
		if _, _, err := top.SplitSubject(s); err == nil {
			t.Errorf("SplitSubject(%q) accepted", s)
		}
	}
}

func TestEmbeddedServerRestartsOnItsStore(t *testing.T) {
	dir := t.TempDir()
	log := zap.NewNop()
	e, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: dir, Sync: "always"}, log)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := Connect(e.ClientURL(), "test", Auth{}, log)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	top := testTopology(2)
	if err := top.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, top.EventSubject("a"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	e.Shutdown()

	e, err = StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: dir, Sync: "1s"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	nc, err = Connect(e.ClientURL(), "test", Auth{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	s, err := js.Stream(ctx, top.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("stream kept %d messages across a restart, want 1", n)
	}
	if _, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Sync: "sometimes"}, log); err == nil {
		t.Fatal("a bad sync setting must be refused")
	}
}

// A topology no stream can be made of is refused before anything is created.
func TestEnsureRefusesABadTopologyBeforeCreatingAnything(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	for name, change := range map[string]func(*Topology){
		"no stream":               func(t *Topology) { t.Stream = "" },
		"no prefix":               func(t *Topology) { t.Prefix = "" },
		"no dead-letter stream":   func(t *Topology) { t.DLQStream = "" },
		"no dead-letter prefix":   func(t *Topology) { t.DLQPrefix = "" },
		"negative partitions":     func(t *Topology) { t.Partitions = -1 },
		"negative replicas":       func(t *Topology) { t.Replicas = -1 },
		"negative duplicate wndw": func(t *Topology) { t.DuplicateWindow = -time.Second },
		"negative max age":        func(t *Topology) { t.MaxAge = -time.Second },
		"negative dlq max age":    func(t *Topology) { t.DLQMaxAge = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			top := testTopology(4)
			change(&top)
			if err := top.Ensure(context.Background(), js); err == nil {
				t.Fatal("Ensure accepted it")
			}
			if n := srv.Streams(); n != 0 {
				t.Fatalf("%d streams were created", n)
			}
		})
	}
	good := testTopology(4)
	if err := good.Ensure(context.Background(), js); err != nil || srv.Streams() == 0 {
		t.Fatalf("Ensure of a good topology: %v, %d streams", err, srv.Streams())
	}
}
