package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/broker/topologytest"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/group"
	"github.com/liverelay/liverelay/internal/publish/pushertest"
)

// proc is a worker process of a scaling test.
type proc struct {
	name    string
	cmd     *exec.Cmd
	metrics string // base URL of its /metrics
	stderr  *bytes.Buffer
}

// startNamed runs the worker binary with the default timings, named name, serving
// its metrics on a free port.
func (h *harness) startNamed(bin, name string) *proc {
	h.t.Helper()
	addr := freeAddr(h.t)
	cmd := exec.Command(bin, "run")
	cmd.Env = append(os.Environ(),
		"LIVE_NATS_URL="+h.cfg.NATSURL,
		"LIVE_HTTP_ADDR="+addr,
		"LIVE_PROVIDER=pusher",
		"PUSHER_APP_ID="+h.cfg.Pusher.AppID,
		"PUSHER_APP_KEY="+h.cfg.Pusher.Key,
		"PUSHER_APP_SECRET="+h.cfg.Pusher.Secret,
		"PUSHER_HOST="+h.cfg.Pusher.Host,
		"PUSHER_SECURE=false",
		"LIVE_PARTITIONS="+strconv.Itoa(h.cfg.Partitions),
		"LIVE_WORKER_NAME="+name,
		"LIVE_LOG_LEVEL=info",
		"LIVE_LOG_FORMAT=json",
	)
	p := &proc{name: name, cmd: cmd, metrics: "http://" + addr + "/metrics", stderr: &bytes.Buffer{}}
	// One goroutine of exec copies the child's stderr into p.stderr, and Wait waits for
	// it: the buffer is read only after Wait, in the clean-up below.
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if h.t.Failed() {
			h.t.Logf("worker %s stderr (last 4 KB):\n%s", name, tail(p.stderr.String(), 4096))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// counter reads one counter or histogram count from a worker's /metrics.
func (p *proc) counter(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(p.metrics)
	if err != nil {
		t.Fatalf("metrics of %s: %v", p.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+]+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("metrics of %s: no %s", p.name, name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// spread returns, for each live worker by name, the partitions it owns: pinned to it,
// or not pinned yet (no message since it pulls) and pulled by it alone; and how many
// partitions no live worker owns.
func (h *harness) spread(ctx context.Context) (map[string][]int, int, error) {
	kv, err := h.js.KeyValue(ctx, h.cfg.Stream+"_WORKERS")
	if err != nil {
		return nil, 0, err
	}
	members, err := group.List(ctx, kv)
	if err != nil {
		return nil, 0, err
	}
	byPin := map[string]string{}
	pullers := map[int][]string{}
	out := map[string][]int{}
	for _, m := range members {
		out[m.Name] = nil
		for p, pin := range m.Pins {
			byPin[fmt.Sprint(p)+"/"+pin] = m.Name
		}
		for _, p := range m.Pulling {
			pullers[p] = append(pullers[p], m.Name)
		}
	}
	orphans := 0
	for p := 0; p < h.cfg.Partitions; p++ {
		c, err := h.js.Consumer(ctx, h.cfg.Stream, fmt.Sprintf("%s_P%d", h.cfg.Stream, p))
		if err != nil {
			return nil, 0, err
		}
		pin := ""
		for _, g := range c.CachedInfo().PriorityGroups {
			pin = g.PinnedClientID
		}
		name, ok := byPin[fmt.Sprint(p)+"/"+pin]
		switch {
		case ok:
			out[name] = append(out[name], p)
		case pin == "" && len(pullers[p]) == 1:
			out[pullers[p][0]] = append(out[pullers[p][0]], p)
		default:
			orphans++
		}
	}
	return out, orphans, nil
}

// waitSpread waits until exactly the named workers hold every partition, each within
// one of the others, and returns how long it took and the spread.
func (h *harness) waitSpread(names []string, within time.Duration) (time.Duration, map[string][]int) {
	h.t.Helper()
	start := time.Now()
	var last map[string][]int
	var lastOrphans int
	for time.Since(start) < within {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, orphans, err := h.spread(ctx)
		cancel()
		if err == nil {
			last, lastOrphans = s, orphans
			if orphans == 0 && balanced(s, names, h.cfg.Partitions) {
				return time.Since(start), s
			}
		}
		time.Sleep(50 * time.Millisecond) // polling the server, not a wait for an outcome
	}
	h.t.Fatalf("after %v the partitions are not spread over %v: %v, %d unowned", within, names, last, lastOrphans)
	return 0, nil
}

func balanced(s map[string][]int, names []string, partitions int) bool {
	if len(s) != len(names) {
		return false
	}
	lo, hi := partitions, 0
	for _, n := range names {
		ps, ok := s[n]
		if !ok {
			return false
		}
		lo, hi = min(lo, len(ps)), max(hi, len(ps))
	}
	return hi-lo <= 1
}

func describeSpread(s map[string][]int) string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%d ", n, len(s[n]))
	}
	return strings.TrimSpace(b.String())
}

// feed publishes the live-blog load at a steady rate until stop is closed, and
// records when each event was published.
type feed struct {
	h    *harness
	want cms
	mu   sync.Mutex
	sent []sentEvent
}

type sentEvent struct {
	channel  string
	post     string // its first render's post
	revision int64
	at       time.Time
}

func (f *feed) run(gen interface{ Next() event.Event }, perSecond int, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		ev := gen.Next()
		f.want.apply(f.h.t, ev)
		at := time.Now()
		f.h.publishRetrying(ev)
		f.mu.Lock()
		if len(ev.Renders) > 0 {
			f.sent = append(f.sent, sentEvent{channel: ev.Channel, post: ev.Renders[0].ID, revision: ev.Revision, at: at})
		}
		f.mu.Unlock()
	}
}

// latencies returns, for the events with renders published in [from, to), the time
// until readers first received their post at that revision or a newer one, or its
// removal (a post removed within the window is never rendered).
func (f *feed) latencies(events []pushertest.Event, from, to time.Time) []time.Duration {
	render := regexp.MustCompile(`data-post-id=\\"([^"\\]+)\\" data-rev=\\"(\d+)\\"`)
	removals := regexp.MustCompile(`"removals":\[([^\]]*)\]`)
	type arrival struct {
		at      time.Time
		revs    map[string]int64
		removed string
	}
	byChannel := map[string][]arrival{}
	for _, e := range events {
		a := arrival{at: e.Received, revs: map[string]int64{}}
		for _, m := range render.FindAllStringSubmatch(e.Data, -1) {
			r, _ := strconv.ParseInt(m[2], 10, 64)
			a.revs[m[1]] = max(a.revs[m[1]], r)
		}
		if m := removals.FindStringSubmatch(e.Data); m != nil {
			a.removed = m[1]
		}
		byChannel[e.Channel] = append(byChannel[e.Channel], a)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for _, s := range f.sent {
		if s.at.Before(from) || !s.at.Before(to) {
			continue
		}
		for _, a := range byChannel[s.channel] {
			if !a.at.Before(s.at) && (a.revs[s.post] >= s.revision || strings.Contains(a.removed, `"`+s.post+`"`)) {
				out = append(out, a.at.Sub(s.at))
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(float64(len(ds))*p))].Round(time.Millisecond)
}

// TestWorkersShareThePartitions: worker processes join one by one, up to four, on a
// stream of 32 partitions (the default); after each join the partitions spread within
// one. Then three of them carry a live-blog load: each sends about a third of the
// provider requests, readers see the CMS's pages, and no channel ever goes back to
// older content.
func TestWorkersShareThePartitions(t *testing.T) {
	bin, h := newProcessHarness(t, "runs worker processes")
	h.cfg.Partitions = 32
	h.pusher.SetDelay(time.Millisecond)
	names := []string{"w1", "w2", "w3", "w4"}
	procs := map[string]*proc{}
	for i, n := range names {
		procs[n] = h.startNamed(bin, n)
		settled, s := h.waitSpread(names[:i+1], 30*time.Second)
		t.Logf("%d worker(s), %d partitions: spread %s, settled %v after %s was started",
			i+1, h.cfg.Partitions, describeSpread(s), settled.Round(time.Millisecond), n)
	}
	// Back to three: w4 stops (SIGTERM).
	if err := procs["w4"].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := procs["w4"].cmd.Wait(); err != nil {
		t.Errorf("w4 after SIGTERM: %v", err)
	}
	h.waitSpread(names[:3], 30*time.Second)

	gen := smallBlogs(300, 21)
	want := cms{}
	want.send(t, gen, 4000, h.publish, nil)
	h.waitDelivered(90 * time.Second)
	want.check(t, h.pages())
	revisionsInOrder(t, h.pusher.Events())
	var total float64
	calls := map[string]float64{}
	for _, n := range names[:3] {
		calls[n] = procs[n].counter(t, "liverelay_provider_request_seconds_count")
		total += calls[n]
	}
	for _, n := range names[:3] {
		share := calls[n] / total
		if share < 0.15 {
			t.Errorf("worker %s sent %.0f of %.0f provider requests: it did not carry its share", n, calls[n], total)
		}
		t.Logf("worker %s: %.0f of %.0f provider requests (%.0f%%)", n, calls[n], total, 100*share)
	}
}

// TestWorkersComeAndGo: with three workers publishing a steady live-blog load, one is
// killed with SIGKILL, a fourth joins, and another is stopped with SIGTERM. Nothing is
// lost, no channel goes back, and the test reports how long readers waited.
func TestWorkersComeAndGo(t *testing.T) {
	bin, h := newProcessHarness(t, "runs and kills worker processes")
	h.cfg.Partitions = 12
	h.pusher.SetDelay(time.Millisecond)
	w := map[string]*proc{}
	for _, n := range []string{"w1", "w2", "w3"} {
		w[n] = h.startNamed(bin, n)
	}
	h.waitSpread([]string{"w1", "w2", "w3"}, 30*time.Second)

	f := &feed{h: h, want: cms{}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); f.run(smallBlogs(120, 33), 80, stop) }()
	steady := time.Now()
	time.Sleep(4 * time.Second) // the load runs; nothing to wait for

	killed := time.Now()
	if err := w["w1"].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = w["w1"].cmd.Wait()
	took, s := h.waitSpread([]string{"w2", "w3"}, 30*time.Second)
	t.Logf("SIGKILL of w1: w2 and w3 hold every partition %v later: %s", took.Round(time.Millisecond), describeSpread(s))
	time.Sleep(time.Until(killed.Add(12 * time.Second)))

	joined := time.Now()
	w["w4"] = h.startNamed(bin, "w4")
	took, s = h.waitSpread([]string{"w2", "w3", "w4"}, 30*time.Second)
	t.Logf("w4 joined: spread %s %v later", describeSpread(s), took.Round(time.Millisecond))
	time.Sleep(time.Until(joined.Add(8 * time.Second)))

	termed := time.Now()
	if err := w["w2"].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := w["w2"].cmd.Wait(); err != nil {
		t.Errorf("w2 after SIGTERM: %v", err)
	}
	stopped := time.Since(termed)
	took, s = h.waitSpread([]string{"w3", "w4"}, 30*time.Second)
	t.Logf("SIGTERM of w2: it exited after %v; w3 and w4 hold every partition %v after the signal: %s",
		stopped.Round(time.Millisecond), took.Round(time.Millisecond), describeSpread(s))
	time.Sleep(time.Until(termed.Add(8 * time.Second)))
	close(stop)
	<-done
	end := time.Now()

	h.waitDelivered(90 * time.Second)
	f.want.check(t, h.pages())
	revisionsInOrder(t, h.pusher.Events())
	events := h.pusher.Events()
	for _, span := range []struct {
		what     string
		from, to time.Time
	}{
		{"steady, three workers", steady, killed.Add(-time.Second)},
		{"after the SIGKILL of w1 (10 s)", killed, killed.Add(10 * time.Second)},
		{"after w4 joined (8 s)", joined, joined.Add(8 * time.Second)},
		{"after the SIGTERM of w2 (8 s)", termed, end},
	} {
		ls := f.latencies(events, span.from, span.to)
		if len(ls) == 0 {
			t.Errorf("%s: no event with renders was published", span.what)
			continue
		}
		t.Logf("delivery latency %s: %d events, p50 %v, p99 %v, worst %v", span.what, len(ls), pct(ls, 0.5), pct(ls, 0.99), ls[len(ls)-1].Round(time.Millisecond))
		if worst := ls[len(ls)-1]; worst > 12*time.Second {
			t.Errorf("%s: a reader waited %v for an update", span.what, worst.Round(time.Millisecond))
		}
	}
}

// TestPausedWorkerStopsPublishing: a worker frozen (SIGSTOP) for longer than the pinned
// TTL while it holds updates loses its partitions to the other worker. When it wakes
// it must not publish what it held: readers would get older content after newer. It
// checks its pins with the server, drops what it held, and rejoins.
func TestPausedWorkerStopsPublishing(t *testing.T) {
	bin, h := newProcessHarness(t, "runs and freezes worker processes")
	h.cfg.Partitions = 8
	// A slow provider: the frozen worker always has updates on their way.
	h.pusher.SetDelay(300 * time.Millisecond)
	w1 := h.startNamed(bin, "w1")
	w2 := h.startNamed(bin, "w2")
	h.waitSpread([]string{"w1", "w2"}, 30*time.Second)

	f := &feed{h: h, want: cms{}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); f.run(smallBlogs(60, 44), 60, stop) }()
	time.Sleep(3 * time.Second) // the load runs; nothing to wait for
	if err := w1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	took, _ := h.waitSpread([]string{"w2"}, 30*time.Second)
	t.Logf("w1 frozen: w2 holds every partition %v later", took.Round(time.Millisecond))
	time.Sleep(time.Until(frozen.Add(10 * time.Second)))
	if err := w1.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	took, s := h.waitSpread([]string{"w1", "w2"}, 30*time.Second)
	t.Logf("w1 woke after 10 s: spread %s %v later", describeSpread(s), took.Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	close(stop)
	<-done

	h.waitDelivered(90 * time.Second)
	// The order of new posts too: the messages w1 held and the newer ones it had
	// received but not read fall due out of order, and w2 takes them over in stream
	// order (internal/consumer/gather.go).
	f.want.check(t, h.pages())
	revisionsInOrder(t, h.pusher.Events())
	if lost := w1.counter(t, `liverelay_partition_handovers_total{kind="lost"}`); lost == 0 {
		t.Errorf("w1 noticed no lost partition after a 10 s freeze")
	}
	if held := w1.counter(t, "liverelay_unowned_publishes_total"); held == 0 {
		t.Logf("w1 had no job to hold back when it woke")
	} else {
		t.Logf("w1 held back %.0f jobs when it woke", held)
	}
	t.Logf("w2 took over %.0f partitions whose outstanding messages came out of stream order",
		w2.counter(t, "liverelay_partition_takeovers_reordered_total"))
}

// TestPinnedWhileAnotherClientHoldsMessages: a consumer leader that changes forgets
// its pins, and may pin a worker while another client still holds unacked messages of
// the partition. The worker must not publish newer events before those: it pauses
// until they are due again, and readers get every post in the CMS's order.
func TestPinnedWhileAnotherClientHoldsMessages(t *testing.T) {
	h := newHarness(t)
	h.cfg.Partitions = 1
	h.cfg.AckWait = 2 * time.Second
	// A worker creates the stream and its consumer, then stops.
	stop := h.startWorker()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Running once it announced itself in the worker group.
		if s, _, err := h.spread(context.Background()); err == nil && len(s) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not start")
		}
		time.Sleep(20 * time.Millisecond) // polling the server
	}
	stop()
	gen := smallBlogs(1, 61)
	want := cms{}
	publish := func(n int) {
		for range n {
			ev := gen.Next()
			want.apply(t, ev)
			h.publish(ev)
		}
	}
	publish(20)
	// Another client takes the first events and holds them unacked.
	ctx := context.Background()
	cons, err := h.js.Consumer(ctx, h.cfg.Stream, h.cfg.Stream+"_P0")
	if err != nil {
		t.Fatal(err)
	}
	held := len(topologytest.Pull(t, cons, 20, 5*time.Second))
	if held == 0 {
		t.Fatal("the other client got nothing")
	}
	// Its pin is forgotten, as by a new consumer leader; newer events come.
	s, err := h.js.Stream(ctx, h.cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UnpinConsumer(ctx, h.cfg.Stream+"_P0", "relay"); err != nil {
		t.Fatal(err)
	}
	publish(20)
	h.startWorker()
	h.waitDelivered(60 * time.Second)
	want.check(t, h.pages())
	revisionsInOrder(t, h.pusher.Events())
	t.Logf("another client held %d of the 40 events when the worker was pinned", held)
}
