package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/relay"
	"github.com/liverelay/liverelay/internal/retry"
)

// opLog records, in order, what the fakes were asked to do: "publish <channel>" once
// per accepted message, "dlq <reason> <channel>" per stored letter, "ack <seq>".
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, fmt.Sprintf(format, args...))
}

func (l *opLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ops)
}

// index is the position of the first op equal to op, -1 when there is none.
func (l *opLog) index(op string) int { return slices.Index(l.all(), op) }

// publishCall is one Publish call the fake provider saw.
type publishCall struct {
	At   time.Time // when it started
	Msgs []publish.Message
	Done bool  // it returned
	Err  error // what it returned
}

// accepted reports whether the provider took message i of the call: the call
// succeeded, or it returned per-message results and message i has none.
func (c publishCall) accepted(i int) bool {
	if !c.Done {
		return false
	}
	if c.Err == nil {
		return true
	}
	var partial *publish.PartialError
	return errors.As(c.Err, &partial) && len(partial.Errs) == len(c.Msgs) && partial.Errs[i] == nil
}

func (c publishCall) has(channel string) bool {
	return slices.ContainsFunc(c.Msgs, func(m publish.Message) bool { return m.Channel == channel })
}

// fakeProvider records every Publish call; publish, when set, decides each call's
// outcome (n counts calls from 0), and check is CheckChannel.
type fakeProvider struct {
	limits  publish.Limits
	check   func(channel string) error
	publish func(ctx context.Context, n int, msgs []publish.Message) error
	ops     *opLog

	mu    sync.Mutex
	calls []publishCall
}

func (p *fakeProvider) Name() string { return "fake" }

func (p *fakeProvider) Limits() publish.Limits {
	if p.limits == (publish.Limits{}) {
		return publish.Limits{MaxData: 10240, MaxBatch: 10}
	}
	return p.limits
}

func (p *fakeProvider) CheckChannel(channel string) error {
	if p.check == nil {
		return nil
	}
	return p.check(channel)
}

func (p *fakeProvider) Publish(ctx context.Context, msgs []publish.Message) error {
	p.mu.Lock()
	n := len(p.calls)
	p.calls = append(p.calls, publishCall{At: time.Now(), Msgs: slices.Clone(msgs)})
	p.mu.Unlock()

	var err error
	if p.publish != nil {
		err = p.publish(ctx, n, msgs)
	}

	p.mu.Lock()
	p.calls[n].Done, p.calls[n].Err = true, err
	p.mu.Unlock()
	call := publishCall{Msgs: msgs, Done: true, Err: err}
	for i, m := range msgs {
		if call.accepted(i) {
			p.ops.add("publish %s", m.Channel)
		}
	}
	return err
}

// Calls returns every call so far, in the order they started.
func (p *fakeProvider) Calls() []publishCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// CallsWith returns the calls that carried a message of channel.
func (p *fakeProvider) CallsWith(channel string) []publishCall {
	var out []publishCall
	for _, c := range p.Calls() {
		if c.has(channel) {
			out = append(out, c)
		}
	}
	return out
}

// Accepted returns the data of channel's messages that the provider accepted, in order.
func (p *fakeProvider) Accepted(channel string) [][]byte {
	var out [][]byte
	for _, c := range p.Calls() {
		for i, m := range c.Msgs {
			if m.Channel == channel && c.accepted(i) {
				out = append(out, m.Data)
			}
		}
	}
	return out
}

// AcceptedAt returns, for each message of channel the provider accepted, when its
// call started.
func (p *fakeProvider) AcceptedAt(channel string) []time.Time {
	var out []time.Time
	for _, c := range p.Calls() {
		for i, m := range c.Msgs {
			if m.Channel == channel && c.accepted(i) {
				out = append(out, c.At)
			}
		}
	}
	return out
}

// fakeDead stores letters; its first fail writes fail. Like the JetStream writer, it
// fails when ctx is done.
type fakeDead struct {
	fail int
	ops  *opLog

	mu      sync.Mutex
	writes  int
	letters []dlq.Letter
}

var errDeadDown = errors.New("dead-letter stream unavailable")

func (d *fakeDead) Write(ctx context.Context, l dlq.Letter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes++
	if d.writes <= d.fail {
		return errDeadDown
	}
	d.letters = append(d.letters, l)
	d.ops.add("%s", letterOp(l.Reason, l.Channel))
	return nil
}

// letterOp is the op a stored letter of reason on channel logs.
func letterOp(reason dlq.Reason, channel string) string {
	return "dlq " + string(reason) + " " + channel
}

func (d *fakeDead) Letters() []dlq.Letter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.letters)
}

func (d *fakeDead) Writes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes
}

// fakeSource is one stream message: it counts acks and in-progress marks.
type fakeSource struct {
	seq        uint64
	receivedAt time.Time // when it was submitted
	ops        *opLog

	acks       atomic.Int32
	naks       atomic.Int32
	inProgress atomic.Int32

	mu         sync.Mutex
	progressAt []time.Time
	ackedAt    time.Time
}

func (s *fakeSource) Ack() error {
	s.acks.Add(1)
	s.mu.Lock()
	s.ackedAt = time.Now()
	s.mu.Unlock()
	s.ops.add("ack %d", s.seq)
	return nil
}

func (s *fakeSource) Nak() error {
	s.naks.Add(1)
	s.ops.add("nak %d", s.seq)
	return nil
}

func (s *fakeSource) InProgress() error {
	s.inProgress.Add(1)
	s.mu.Lock()
	s.progressAt = append(s.progressAt, time.Now())
	s.mu.Unlock()
	return nil
}

func (s *fakeSource) ProgressAt() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.progressAt)
}

func (s *fakeSource) AckedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ackedAt
}

// harness runs a relay over fakes inside a synctest bubble.
type harness struct {
	t        *testing.T
	relay    *relay.Relay
	provider *fakeProvider
	dead     *fakeDead
	ops      *opLog
	start    time.Time
	metrics  *prometheus.Registry

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	runErr   error

	seq     uint64
	sources []*fakeSource
}

// baseConfig is a relay with a 1 s window, limits far away, and no keep-alive noise.
func baseConfig() relay.Config {
	return relay.Config{
		Window:          time.Second,
		MaxEvents:       100,
		MaxBytes:        1 << 20,
		Concurrency:     2,
		Retry:           retry.Policy{Initial: time.Second, Max: 8 * time.Second, Multiplier: 2},
		KeepAlive:       time.Hour,
		ShutdownTimeout: 5 * time.Second,
	}
}

// noFence is a fence that knows no revision: it drops nothing and records nothing,
// as for events without revisions. Tests of the fence pass fakeFence instead.
type noFence struct{}

func (noFence) Check(context.Context, int, uint64, *merge.Update) (int, error) { return 0, nil }
func (noFence) Record(int, *merge.Update)                                      {}
func (noFence) Received(int, uint64)                                           {}

// everyPartition is an owner that holds every partition for good. Tests of the owner
// check pass owner instead.
type everyPartition struct{}

func (everyPartition) Owns(int, string) error { return nil }

// startRelay runs a relay with p and d (nil for defaults), no fence and every
// partition owned, after applying opts to its dependencies; it is stopped at the end
// of the test at the latest.
func startRelay(t *testing.T, cfg relay.Config, p *fakeProvider, d *fakeDead, opts ...func(*relay.Deps)) *harness {
	t.Helper()
	if p == nil {
		p = &fakeProvider{}
	}
	if d == nil {
		d = &fakeDead{}
	}
	ops := &opLog{}
	p.ops, d.ops = ops, ops
	reg := prometheus.NewRegistry()
	deps := relay.Deps{Provider: p, DeadLetters: d, Fence: noFence{}, Owner: everyPartition{}, Registry: reg, Log: zaptest.NewLogger(t)}
	for _, opt := range opts {
		opt(&deps)
	}
	r, err := relay.New(cfg, deps)
	if err != nil {
		t.Fatalf("relay.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, relay: r, provider: p, dead: d, ops: ops, start: time.Now(), metrics: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- r.Run(ctx) }()
	t.Cleanup(func() { h.stop() })
	synctest.Wait()
	return h
}

// startWindowed runs a relay with baseConfig's settings but a merge window of window,
// and a provider that answers with pub (nil: accepts everything).
func startWindowed(t *testing.T, window time.Duration, pub func(context.Context, int, []publish.Message) error) (*harness, *fakeProvider) {
	t.Helper()
	cfg := baseConfig()
	cfg.Window = window
	p := &fakeProvider{publish: pub}
	return startRelay(t, cfg, p, nil), p
}

// stop cancels Run's context and waits for Run to return.
func (h *harness) stop() error {
	h.stopOnce.Do(func() {
		h.cancel()
		h.runErr = <-h.done
	})
	return h.runErr
}

func (h *harness) input(ev event.Event) (relay.Input, *fakeSource) {
	h.seq++
	src := &fakeSource{seq: h.seq, receivedAt: time.Now(), ops: h.ops}
	token := event.Token(ev.Channel)
	return relay.Input{Event: ev, Token: token, Subject: "live.events." + token, Seq: h.seq, Msg: src}, src
}

// submit hands evs to the relay, one message each.
func (h *harness) submit(evs ...event.Event) []*fakeSource {
	h.t.Helper()
	var out []*fakeSource
	for _, ev := range evs {
		in, src := h.input(ev)
		h.submitInputs(in)
		h.sources = append(h.sources, src)
		out = append(out, src)
	}
	return out
}

// submitInputs hands ins, made by input, to the relay in order.
func (h *harness) submitInputs(ins ...relay.Input) {
	h.t.Helper()
	for _, in := range ins {
		if err := h.relay.Submit(context.Background(), in); err != nil {
			h.t.Fatalf("Submit(seq %d): %v", in.Seq, err)
		}
	}
}

// onlyLetter returns the one letter the relay stored; it fails the test unless the
// relay stored exactly one.
func (h *harness) onlyLetter() dlq.Letter {
	h.t.Helper()
	letters := h.dead.Letters()
	if len(letters) != 1 {
		h.t.Fatalf("%d letters %+v, want 1", len(letters), letters)
	}
	return letters[0]
}

// checkAckedOnce fails unless every source was acked exactly once.
func checkAckedOnce(t *testing.T, srcs ...*fakeSource) {
	t.Helper()
	for _, s := range srcs {
		if n := s.acks.Load(); n != 1 {
			t.Errorf("source seq %d acked %d times, want 1", s.seq, n)
		}
	}
}

// checkNotAcked fails if any source was acked.
func checkNotAcked(t *testing.T, srcs ...*fakeSource) {
	t.Helper()
	for _, s := range srcs {
		if n := s.acks.Load(); n != 0 {
			t.Errorf("source seq %d acked %d times, want 0", s.seq, n)
		}
	}
}

// checkAckedAfter fails unless each source's ack comes after op in the log.
func checkAckedAfter(t *testing.T, ops *opLog, op string, srcs ...*fakeSource) {
	t.Helper()
	i := ops.index(op)
	if i < 0 {
		t.Errorf("op %q never happened; ops: %q", op, ops.all())
		return
	}
	for _, s := range srcs {
		if j := ops.index(fmt.Sprintf("ack %d", s.seq)); j < i {
			t.Errorf("ack of seq %d at op %d, before %q at op %d; ops: %q", s.seq, j, op, i, ops.all())
		}
	}
}

// Events.

func renders(channel string, idContent ...string) event.Event {
	ev := event.Event{Channel: channel}
	for i := 0; i+1 < len(idContent); i += 2 {
		ev.Renders = append(ev.Renders, event.Render{ID: idContent[i], Show: true, Content: idContent[i+1]})
	}
	return ev
}

func removals(channel string, ids ...string) event.Event {
	return event.Event{Channel: channel, Removals: ids}
}

func withRevision(ev event.Event, rev int64) event.Event {
	ev.Revision = rev
	return ev
}

// describe writes a browser message's data as "a=1 b=2 | -c": renders in order, then
// removals. It fails the test if data is not what the browser reads.
func describe(t *testing.T, data []byte) string {
	t.Helper()
	if len(data) < 2 || data[0] != '{' {
		t.Fatalf("message data %q is not a JSON object", data)
	}
	if !strings.Contains(string(data), `"removals":[`) {
		t.Fatalf("message data %s has no removals array", data)
	}
	ev, err := event.Decode(append([]byte(`{"v":1,"channel":"x",`), data[1:]...))
	if err != nil {
		t.Fatalf("message data %s: %v", data, err)
	}
	return describeEvent(ev)
}

func describeEvent(ev event.Event) string {
	var b strings.Builder
	for _, r := range ev.Renders {
		fmt.Fprintf(&b, "%s=%s ", r.ID, r.Content)
	}
	b.WriteString("|")
	for _, id := range ev.Removals {
		fmt.Fprintf(&b, " -%s", id)
	}
	return b.String()
}

func describeAll(t *testing.T, datas [][]byte) []string {
	t.Helper()
	out := make([]string, len(datas))
	for i, d := range datas {
		out[i] = describe(t, d)
	}
	return out
}

// Provider behaviours.

func err500() error {
	return &publish.Error{Provider: "fake", Status: 500, Err: errors.New("internal server error")}
}

// blockUntilDone waits for ctx like a provider whose request hangs, and fails as the
// Pusher provider does when its context ends.
func blockUntilDone(ctx context.Context) error {
	<-ctx.Done()
	return &publish.Error{Provider: "fake", Err: ctx.Err()}
}

// failWith fails the first n calls that carry a message of channel with err.
func failWith(channel string, n int, err error) func(context.Context, int, []publish.Message) error {
	var mu sync.Mutex
	failed := 0
	return func(_ context.Context, _ int, msgs []publish.Message) error {
		if !slices.ContainsFunc(msgs, func(m publish.Message) bool { return m.Channel == channel }) {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if n >= 0 && failed >= n {
			return nil
		}
		failed++
		return err
	}
}

func seqsOf(srcs []*fakeSource) []uint64 {
	out := make([]uint64, len(srcs))
	for i, s := range srcs {
		out[i] = s.seq
	}
	return out
}

// advance lets fake time pass, then lets every goroutine settle.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// gauge is the value of the one series of a gauge family of the relay's metrics.
func (h *harness) gauge(name string) float64 {
	h.t.Helper()
	families, err := h.metrics.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	h.t.Fatalf("no single series of %s", name)
	return 0
}
