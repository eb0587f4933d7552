package consumer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/broker/topologytest"
	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/relay"
)

// submitter is a fake relay: it acks what it takes and records the channels, or runs
// a script first.
type submitter struct {
	mu     sync.Mutex
	got    []string
	before func(in relay.Input)
}

func (s *submitter) Submit(_ context.Context, in relay.Input) error {
	if s.before != nil {
		s.before(in)
	}
	s.mu.Lock()
	s.got = append(s.got, in.Event.Channel+"/"+in.Event.Renders[0].ID)
	s.mu.Unlock()
	return in.Msg.Ack()
}

func (s *submitter) Release(context.Context, int) (int, error) { return 0, nil }
func (s *submitter) Drop(context.Context, int) error           { return nil }

// soloGroup is a worker group of one.
type soloGroup struct{ self string }

func (g soloGroup) Alive() []string                  { return []string{g.self} }
func (g soloGroup) Changes() <-chan struct{}         { return nil }
func (g soloGroup) SetHolding([]int, map[int]string) {}
func (g soloGroup) Leave(context.Context)            {}

func (s *submitter) taken() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// testConfig is the consumer's configuration in these tests: worker "me", pulls of 10
// messages that wait a second, a 10 s pin, and 5 s to hand over and to ack.
func testConfig() Config {
	return Config{Self: "me", PullBatch: 10, PullExpiry: time.Second, PinnedTTL: 10 * time.Second, HandoverTimeout: 5 * time.Second, AckWait: 5 * time.Second}
}

// testDeps returns the dependencies of a consumer with cfg on the server js reaches:
// worker "me" alone in its group, sub as its relay, letters as its dead-letter writer
// and reg as the registry of its metrics.
func testDeps(t *testing.T, js jetstream.JetStream, top broker.Topology, cfg Config, sub Relay, letters *dlq.Writer, reg prometheus.Registerer) Deps {
	t.Helper()
	return Deps{Conn: js.Conn(), JetStream: js, Stream: topologytest.Stream(t, js, top.Stream), Topology: top, Group: soloGroup{"me"},
		Ownership: NewOwnership(cfg), Relay: sub, DeadLetters: letters, Registry: reg, Log: zaptest.NewLogger(t)}
}

func setup(t *testing.T, sub Relay) (jetstream.JetStream, broker.Topology, func()) {
	t.Helper()
	_, js, top := topologytest.Start(t, 2)
	topologytest.Consumers(t, js, top, broker.ConsumerConfig{AckWait: 5 * time.Second, MaxDeliver: 5, MaxAckPending: 100, PinnedTTL: 10 * time.Second})
	cfg := testConfig()
	reg := prometheus.NewRegistry()
	c, err := New(cfg, testDeps(t, js, top, cfg, sub, dlq.NewWriter(js, top.DLQPrefix, reg), reg))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	brokertest.WaitFor(t, 15*time.Second, "the consumer to be ready", func() bool { return c.Ready() == nil })
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	return js, top, stop
}

func publish(t *testing.T, js jetstream.JetStream, top broker.Topology, channel, post string) {
	t.Helper()
	ev := event.Event{Channel: channel, Renders: []event.Render{{ID: post, Show: true, Content: "<p>x</p>"}}}
	if _, err := js.Publish(context.Background(), top.EventSubject(event.Token(channel)), event.Append(nil, ev)); err != nil {
		t.Fatal(err)
	}
}

func dlqCount(t *testing.T, js jetstream.JetStream, top broker.Topology) (uint64, *jetstream.RawStreamMsg) {
	t.Helper()
	s := topologytest.Stream(t, js, top.DLQStream)
	info, err := s.Info(context.Background())
	if err != nil || info.State.Msgs == 0 {
		return 0, nil
	}
	m, _ := s.GetMsg(context.Background(), info.State.FirstSeq)
	return info.State.Msgs, m
}

// A message whose handling panics is dead-lettered with the panic as its detail; the
// worker survives and the events around it are taken.
func TestPanicIsDeadLetteredAndTheRestGoesOn(t *testing.T) {
	sub := &submitter{before: func(in relay.Input) {
		if in.Event.Channel == "poison" {
			panic("render exploded")
		}
	}}
	js, top, stop := setup(t, sub)
	defer stop()
	publish(t, js, top, "news", "before")
	publish(t, js, top, "poison", "p")
	publish(t, js, top, "news", "after")
	brokertest.WaitFor(t, 15*time.Second, "two events and one letter", func() bool {
		n, _ := dlqCount(t, js, top)
		return len(sub.taken()) == 2 && n == 1
	})
	_, letter := dlqCount(t, js, top)
	if letter.Header.Get(dlq.HeaderReason) != "handler-panic" || letter.Header.Get(dlq.HeaderDetail) != "render exploded" || letter.Subject != "live.dlq.poison" {
		t.Fatalf("letter %s %v", letter.Subject, letter.Header)
	}
	if got := sub.taken(); got[0] != "news/before" || got[1] != "news/after" {
		t.Fatalf("taken %v", got)
	}
}

// When the dead-letter stream cannot take a letter, the invalid message is not acked
// (nothing is lost) and comes back once it can.
func TestInvalidEventIsNotAckedUntilDeadLettered(t *testing.T) {
	sub := &submitter{}
	js, top, stop := setup(t, sub)
	defer stop()
	ctx := context.Background()
	// Take the dead-letter stream away.
	if err := js.DeleteStream(ctx, top.DLQStream); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, top.EventSubject("x"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	events := topologytest.Stream(t, js, top.Stream)
	// It is delivered and handed back (nak with delay), not acked.
	brokertest.WaitFor(t, 15*time.Second, "a delivery attempt", func() bool {
		for p := 0; p < top.Partitions; p++ {
			c, err := events.Consumer(ctx, top.ConsumerName(p))
			if err != nil {
				continue
			}
			info, err := c.Info(ctx)
			if err == nil && info.NumAckPending+int(info.NumRedelivered) > 0 {
				return true
			}
		}
		return false
	})
	if err := top.Ensure(ctx, js); err != nil { // the stream comes back
		t.Fatal(err)
	}
	brokertest.WaitFor(t, 15*time.Second, "the letter after the stream came back", func() bool {
		n, _ := dlqCount(t, js, top)
		return n == 1
	})
	_, letter := dlqCount(t, js, top)
	if letter.Header.Get(dlq.HeaderReason) != event.ReasonMalformed || string(letter.Data) != "not json" {
		t.Fatalf("letter %v %q", letter.Header, letter.Data)
	}
}

// A consumer missing a dependency, or with timings it cannot keep, is refused before
// it registers any metric.
func TestNewRefusesWhatItCannotRunWith(t *testing.T) {
	_, js, top := topologytest.Start(t, 2)
	good := testConfig()
	// The writer's metrics are elsewhere: the registry holds the consumer's only.
	letters := dlq.NewWriter(js, top.DLQPrefix, prometheus.NewRegistry())
	deps := func(reg prometheus.Registerer) Deps { return testDeps(t, js, top, good, &submitter{}, letters, reg) }
	for name, change := range map[string]func(*Config, *Deps){
		"no self":             func(c *Config, _ *Deps) { c.Self = "" },
		"no pull batch":       func(c *Config, _ *Deps) { c.PullBatch = 0 },
		"pin within a pull":   func(c *Config, _ *Deps) { c.PinnedTTL = c.PullExpiry },
		"no ack wait":         func(c *Config, _ *Deps) { c.AckWait = 0 },
		"no hand-over time":   func(c *Config, _ *Deps) { c.HandoverTimeout = 0 },
		"no partitions":       func(_ *Config, d *Deps) { d.Topology.Partitions = 0 },
		"no connection":       func(_ *Config, d *Deps) { d.Conn = nil },
		"no group":            func(_ *Config, d *Deps) { d.Group = nil },
		"no ownership":        func(_ *Config, d *Deps) { d.Ownership = nil },
		"no relay":            func(_ *Config, d *Deps) { d.Relay = nil },
		"no dead letters":     func(_ *Config, d *Deps) { d.DeadLetters = nil },
		"no registry":         func(_ *Config, d *Deps) { d.Registry = nil },
		"no logger":           func(_ *Config, d *Deps) { d.Log = nil },
		"no stream":           func(_ *Config, d *Deps) { d.Stream = nil },
		"no jetstream":        func(_ *Config, d *Deps) { d.JetStream = nil },
		"ownership of others": func(c *Config, _ *Deps) { c.PinnedTTL = time.Minute },
	} {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			cfg, d := good, deps(reg)
			change(&cfg, &d)
			if _, err := New(cfg, d); err == nil {
				t.Fatal("New accepted it")
			}
			if mfs, _ := reg.Gather(); len(mfs) != 0 {
				t.Fatalf("%d metrics registered", len(mfs))
			}
		})
	}
	if _, err := New(good, deps(prometheus.NewRegistry())); err != nil {
		t.Fatalf("New refused a complete consumer: %v", err)
	}
}
