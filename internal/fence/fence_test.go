package fence

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/broker/topologytest"
	"github.com/liverelay/liverelay/internal/consumer"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
)

// rig is a real JetStream with liverelay's event stream (one partition), its
// consumer, and the fence bucket.
type rig struct {
	t    *testing.T
	srv  *brokertest.Server
	js   jetstream.JetStream
	top  broker.Topology
	hist *consumer.History
	cons jetstream.Consumer // one handle: the server pins the partition to it
}

const channel = "live-blog"

func newRig(t *testing.T) *rig {
	t.Helper()
	srv, js, top := topologytest.Start(t, 1)
	_, stream := topologytest.Consumers(t, js, top, broker.ConsumerConfig{AckWait: time.Minute, MaxDeliver: 5, MaxAckPending: 100, PinnedTTL: time.Minute})
	cons, err := js.Consumer(context.Background(), top.Stream, top.ConsumerName(0))
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, srv: srv, js: js, top: top, hist: consumer.NewHistory(stream, top), cons: cons}
}

// publish checks u, of the message at seq, with f and records it, as the relay does
// with an update it publishes; it fails t if the check fails.
func publish(ctx context.Context, t *testing.T, f *Fence, seq uint64, u *merge.Update) {
	t.Helper()
	if _, err := f.Check(ctx, 0, seq, u); err != nil {
		t.Fatal(err)
	}
	f.Record(0, u)
}

// config is the fence configuration of the rig's workers: the LIVE_REVISIONS bucket
// keeping a revision an hour, a 10 s cache, no timed rounds (tests store with
// mustStore), and an hour before an unacked delivery counts as a lost ack.
func (r *rig) config() Config {
	return Config{Bucket: "LIVE_REVISIONS", Replicas: 1, TTL: time.Hour, CacheTTL: 10 * time.Second,
		StoreEvery: time.Hour, History: r.hist, Redelivery: time.Hour}
}

// open opens a fence as one worker would: its own cache, the shared bucket.
func (r *rig) open() *Fence {
	r.t.Helper()
	return r.openWith(r.config())
}

// openWith opens a fence with cfg as one worker would.
func (r *rig) openWith(cfg Config) *Fence {
	r.t.Helper()
	f, err := Open(context.Background(), r.js, cfg, prometheus.NewRegistry(), zaptest.NewLogger(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	return f
}

// owner opens a fence as the worker partition 0 has just come to.
func (r *rig) owner() *Fence {
	r.t.Helper()
	f := r.open()
	f.Acquire(0)
	return f
}

// emit publishes one render of post at rev, as the CMS does.
func (r *rig) emit(post string, rev int64) {
	r.t.Helper()
	ev := event.Event{Channel: channel, Revision: rev, Renders: []event.Render{{ID: post, Show: true, Content: post + "@" + strconv.FormatInt(rev, 10)}}}
	if _, err := r.js.Publish(context.Background(), r.top.EventSubject(event.Token(channel)), event.Append(nil, ev)); err != nil {
		r.t.Fatal(err)
	}
}

// deliver pulls n messages of partition 0 as its owner does.
func (r *rig) deliver(n int) []jetstream.Msg {
	r.t.Helper()
	return topologytest.PullExactly(r.t, r.cons, n)
}

// updateOf is what the relay would publish for msg.
func updateOf(t *testing.T, msg jetstream.Msg) *merge.Update {
	t.Helper()
	ev, err := event.Decode(msg.Data())
	if err != nil {
		t.Fatal(err)
	}
	u := merge.New(ev.Channel)
	u.Add(ev)
	return u
}

func update(rev int64, renders []string, removals ...string) *merge.Update {
	u := merge.New(channel)
	ev := event.Event{Channel: channel, Removals: removals, Revision: rev}
	for _, id := range renders {
		ev.Renders = append(ev.Renders, event.Render{ID: id, Show: true, Content: id + "@" + strconv.FormatInt(rev, 10)})
	}
	u.Add(ev)
	return u
}

// checkDrops checks u, of the message at seq, with f on partition 0, and fails t
// unless the check succeeds and drops want of u's operations; what names the check.
func checkDrops(t *testing.T, f *Fence, seq uint64, u *merge.Update, want int, what string) {
	t.Helper()
	if n, err := f.Check(context.Background(), 0, seq, u); err != nil || n != want {
		t.Fatalf("%s: dropped %d (%v), want %d", what, n, err, want)
	}
}

// catchUp makes f catch up on partition 0, as its first check would.
func catchUp(t *testing.T, f *Fence) {
	t.Helper()
	if err := f.catchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
}

// newer is the first sequence of an update from messages no previous owner had.
const newer = 1 << 40

// seqOf is msg's stream sequence.
func seqOf(t *testing.T, msg jetstream.Msg) uint64 {
	t.Helper()
	meta, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	return meta.Sequence.Stream
}

func mustStore(t *testing.T, f *Fence) {
	t.Helper()
	if !f.store(context.Background()) {
		t.Fatal("a round of writes failed")
	}
}

func TestFenceDropsOlderOperations(t *testing.T) {
	r := newRig(t)
	f := r.open()
	published := update(20, []string{"a", "b"}, "gone")
	checkDrops(t, f, newer, published, 0, "the first check")
	f.Record(0, published)
	mustStore(t, f)

	// Another worker (a fresh cache) sees the stored revisions: a replay of an older
	// failure loses the render of a, the removal of b and the render of gone; c is new.
	other := r.open()
	old := update(10, []string{"a", "c", "gone"}, "b")
	checkDrops(t, other, newer, old, 3, "another worker, the older update")
	if got := strings.Join(old.Posts(), ","); got != "c" {
		t.Fatalf("left %s, want c", got)
	}
	checkDrops(t, other, newer, update(30, []string{"a"}), 0, "a newer render")
	checkDrops(t, other, newer, update(0, []string{"a"}), 0, "an operation without revision")
}

// The worker that recorded a revision fences with it at once, before it is stored.
func TestRecordFencesAtOnceAndStoresLater(t *testing.T) {
	r := newRig(t)
	f := r.open()
	ctx := context.Background()
	u := update(50, []string{"p"})
	publish(ctx, t, f, newer, u)
	checkDrops(t, f, newer, update(40, []string{"p"}), 1, "an older render right after the record")
	if f.Pending() != 1 {
		t.Fatalf("Pending() = %d, want 1", f.Pending())
	}
	checkDrops(t, r.open(), newer, update(40, []string{"p"}), 0, "another worker, before the record is stored")
	mustStore(t, f)
	if f.Pending() != 0 {
		t.Fatalf("Pending() = %d after a round, want 0", f.Pending())
	}
	checkDrops(t, r.open(), newer, update(40, []string{"p"}), 1, "another worker, after the round")
}

// Two workers recording the same channel at once (a partition hand-over) leave the
// newer revision of each post, whatever the order.
func TestStoreKeepsTheNewestUnderRace(t *testing.T) {
	r := newRig(t)
	f, g := r.open(), r.open()
	ctx := context.Background()
	for round := int64(1); round <= 20; round++ {
		lo, hi := update(round*10, []string{"p", "q"}), update(round*10+5, []string{"p"})
		if _, err := f.Check(ctx, 0, newer, lo); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Check(ctx, 0, newer, hi); err != nil {
			t.Fatal(err)
		}
		f.Record(0, lo)
		g.Record(0, hi)
		var wg sync.WaitGroup
		wg.Go(func() { f.store(ctx) })
		wg.Go(func() { g.store(ctx) })
		wg.Wait()
		// A conflict leaves the loser's record for its next round.
		for f.Pending()+g.Pending() > 0 {
			f.store(ctx)
			g.store(ctx)
		}
		probe := r.open()
		checkDrops(t, probe, newer, update(round*10+4, []string{"p", "q"}), 1, fmt.Sprintf("round %d: p fenced (revision %d stored) and q not", round, round*10+5))
	}
}

// A worker that dies after publishing — acked, not stored — leaves its newest
// revisions only in the stream. The next owner catches up from the partition's mark
// before it publishes, so an older revision redelivered after the newer one was
// published is dropped.
func TestCatchUpFencesWhatADeadOwnerPublished(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.emit("p", 10)
	r.emit("p", 20)
	r.emit("p", 15) // an older edit that reached the stream late

	dead := r.owner()
	catchUp(t, dead) // before its first delivery: nothing to read
	msgs := r.deliver(3)
	for _, m := range msgs[:2] {
		u := updateOf(t, m)
		checkDrops(t, dead, seqOf(t, m), u, 0, "the dead owner, a delivery in order")
		dead.Record(0, u)
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The worker dies here: revision 20 is on readers' pages, nowhere in the bucket,
	// and message 3 (revision 15) is unacked.

	next := r.owner()
	// Message 3 comes to it again: the first of its channel it has.
	next.Received(0, seqOf(t, msgs[2]))
	checkDrops(t, next, seqOf(t, msgs[2]), updateOf(t, msgs[2]), 1, "the new owner, revision 15 after revision 20 was published")
	checkDrops(t, next, newer, update(21, []string{"p"}), 0, "a newer edit")
	// Its round stores revision 20 and moves the mark to the ack floor, 2.
	mustStore(t, next)
	mark, _, found, err := next.readMark(ctx, 0)
	if err != nil || !found || mark != 2 {
		t.Fatalf("stored mark %d (found %v, %v), want 2: the ack floor", mark, found, err)
	}
	third := r.owner()
	third.Received(0, 3)
	checkDrops(t, third, 3, update(15, []string{"p"}), 1, "a third owner")
	if got := third.metricsCaughtUpEvents(); got != 1 {
		t.Fatalf("the third owner read %v events; past the mark there was one", got)
	}
}

// What a dead owner was delivered but had not acked comes to the next owner again and
// is published by it in order: the catch-up must not take it as published, or the
// first render of a post followed by an edit would be dropped and the post move on
// the page.
func TestCatchUpLeavesUnackedDeliveriesToBePublished(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.emit("a", 1)
	r.emit("new-post", 2) // its first render: the post's place on the page
	r.emit("new-post", 3) // an edit

	dead := r.owner()
	catchUp(t, dead)
	msgs := r.deliver(3)
	u := updateOf(t, msgs[0])
	publish(ctx, t, dead, seqOf(t, msgs[0]), u)
	if err := msgs[0].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	// Dies holding messages 2 and 3.

	next := r.owner()
	next.Received(0, seqOf(t, msgs[1]))
	next.Received(0, seqOf(t, msgs[2]))
	checkDrops(t, next, seqOf(t, msgs[1]), updateOf(t, msgs[1]), 0, "the first render of a post the dead owner never published")
}

// An ack lost with a consumer leader that died: the older message comes again, the
// newer one, acked, does not. Until a newer message of the partition (or the
// redelivery time) says which, the older update waits; then it is fenced.
func TestCatchUpWaitsOutALostAck(t *testing.T) {
	for _, by := range []string{"a newer message", "the redelivery time"} {
		t.Run(by, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			r.emit("p", 10)
			r.emit("p", 20)
			dead := r.owner()
			catchUp(t, dead)
			msgs := r.deliver(2)
			for _, m := range msgs {
				u := updateOf(t, m)
				publish(ctx, t, dead, seqOf(t, m), u)
			}
			// Only the second ack reaches the consumer.
			if err := msgs[1].DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}

			cfg := r.config()
			cfg.Redelivery = 300 * time.Millisecond
			next := r.openWith(cfg)
			next.Acquire(0)
			next.Received(0, 1)
			_, err := next.Check(ctx, 0, 1, updateOf(t, msgs[0]))
			var w interface{ Wait() bool }
			if !errors.As(err, &w) || !w.Wait() {
				t.Fatalf("revision 10 right after the catch-up: %v, want an error that says wait", err)
			}
			if by == "a newer message" {
				r.emit("other", 1)
				next.Received(0, 3)
			} else {
				time.Sleep(400 * time.Millisecond) // the redelivery time the test set
			}
			checkDrops(t, next, 1, updateOf(t, msgs[0]), 1, "revision 10 after "+by)
		})
	}
}

// A round stores the partition's mark at its ack floor, so that the next owner reads
// nothing; a round that finds the mark written by someone else (the partition was
// caught up by another worker) stops writing it and catches up again.
func TestMarkFollowsTheAckFloorAndYieldsToTheNextOwner(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for rev := int64(1); rev <= 5; rev++ {
		r.emit("p", rev)
	}
	f := r.owner()
	catchUp(t, f)
	for _, m := range r.deliver(5) {
		u := updateOf(t, m)
		publish(ctx, t, f, seqOf(t, m), u)
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mustStore(t, f)
	if mark, _, _, err := f.readMark(ctx, 0); err != nil || mark != 5 {
		t.Fatalf("mark %d (%v) after a round, want the ack floor 5", mark, err)
	}

	g := r.owner()
	if _, err := g.Check(ctx, 0, newer, update(6, []string{"p"})); err != nil {
		t.Fatal(err)
	}
	if got := g.metricsCaughtUpEvents(); got != 0 {
		t.Fatalf("the next owner read %v events, want 0", got)
	}
	// f still thinks it holds the partition (paused, cut off): its next mark write
	// must not go through.
	r.emit("p", 7)
	m := r.deliver(1)[0]
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	f.Record(0, update(7, []string{"p"}))
	mustStore(t, f)
	f.mu.Lock()
	caughtUp := f.parts[0].caughtUp
	f.mu.Unlock()
	if caughtUp {
		t.Fatal("a worker whose mark was overwritten still counts itself caught up")
	}
}

// While the bucket is away, publishing goes on from the cache; what was recorded is
// stored once it is back.
func TestRecordsWaitForTheBucketWithoutStoppingPublishes(t *testing.T) {
	r := newRig(t)
	f := r.open()
	ctx := context.Background()
	if _, err := f.Check(ctx, 0, newer, update(7, []string{"p"})); err != nil {
		t.Fatal(err)
	}
	r.srv.Shutdown()
	f.Record(0, update(7, []string{"p"}))
	checkDrops(t, f, newer, update(6, []string{"p"}), 1, "with NATS down, the cache")
	time.Sleep(200 * time.Millisecond) // the record ages
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	if f.store(sctx) {
		t.Fatal("a round succeeded with NATS down")
	}
	cancel()
	if lag := f.Lag(); lag < 200*time.Millisecond {
		t.Fatalf("lag %v after a failed round, want ≥ 200ms (the record's age): a failed write must keep its age", lag)
	}
	r.srv.Restart()
	deadline := time.Now().Add(20 * time.Second)
	for !f.store(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("not stored after NATS came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkDrops(t, r.open(), newer, update(6, []string{"p"}), 1, "another worker, after NATS came back")
	if lag := f.Lag(); lag != 0 {
		t.Fatalf("lag %v with everything stored, want 0", lag)
	}
}

func TestEncodeKeepsTheNewestPosts(t *testing.T) {
	revs := map[string]int64{}
	for i := 0; i < MaxPosts+10; i++ {
		revs[strings.Repeat("p", 1+i%7)+string(rune('a'+i%26))+strconv.Itoa(i)] = int64(i)
	}
	got, err := decode(encode(revs))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != MaxPosts {
		t.Fatalf("kept %d posts, want %d", len(got), MaxPosts)
	}
	for id, rev := range got {
		if revs[id] != rev || rev < 10 {
			t.Fatalf("post %s: revision %d (was %d); the oldest must go first", id, rev, revs[id])
		}
	}
	if _, err := decode([]byte{0x05, 'a'}); err == nil {
		t.Fatal("a truncated entry must not decode")
	}
}

// An operator who deletes a channel's key (to unfence it) leaves a delete marker; the
// next store must write over it, not retry forever.
func TestStoreWritesOverADeleteMarker(t *testing.T) {
	r := newRig(t)
	f := r.open()
	ctx := context.Background()
	first := update(10, []string{"p"})
	publish(ctx, t, f, newer, first)
	mustStore(t, f)
	kv, err := r.js.KeyValue(ctx, "LIVE_REVISIONS")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, Key(channel)); err != nil {
		t.Fatal(err)
	}
	// The cached worker and a fresh one both store over the marker.
	f.Record(0, update(20, []string{"p"}))
	for i := 0; f.Pending() > 0; i++ {
		if i == 3 {
			t.Fatal("the record was not stored over the delete marker in 3 rounds")
		}
		f.store(ctx)
	}
	g := r.open()
	later := update(30, []string{"q"})
	publish(ctx, t, g, newer, later)
	mustStore(t, g)
}

// A partition whose events carry no revision is never checked; the round catches it
// up all the same, so that its mark moves and the messages it notes stay bounded.
func TestRoundCatchesUpUncheckedPartitions(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.emit("p", 0)
	r.emit("q", 0)
	f := r.owner()
	for _, m := range r.deliver(2) {
		f.Received(0, seqOf(t, m))
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mustStore(t, f) // catches up
	mustStore(t, f) // moves the mark to the ack floor
	f.mu.Lock()
	h := f.parts[0]
	caughtUp, received := h.caughtUp, len(h.received)
	f.mu.Unlock()
	if !caughtUp || received != 0 {
		t.Fatalf("after two rounds: caught up %v, %d received sequences kept; want true, 0", caughtUp, received)
	}
	if mark, _, _, err := f.readMark(ctx, 0); err != nil || mark != 2 {
		t.Fatalf("mark %d (%v), want 2", mark, err)
	}
}

// A config the fence cannot work with is refused before the bucket is created, and
// nothing is registered.
func TestOpenValidatesBeforeCreatingTheBucket(t *testing.T) {
	r := newRig(t)
	good := r.config()
	for name, change := range map[string]func(*Config){
		"no cache TTL":        func(c *Config) { c.CacheTTL = 0 },
		"negative store time": func(c *Config) { c.StoreEvery = -time.Second },
		"no history":          func(c *Config) { c.History = nil },
		"no redelivery":       func(c *Config) { c.Redelivery = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := good
			change(&cfg)
			reg := prometheus.NewRegistry()
			if _, err := Open(context.Background(), r.js, cfg, reg, zaptest.NewLogger(t)); err == nil {
				t.Fatal("Open accepted it")
			}
			if _, err := r.js.KeyValue(context.Background(), cfg.Bucket); !errors.Is(err, jetstream.ErrBucketNotFound) {
				t.Fatalf("the bucket: %v, want it not created", err)
			}
			if mfs, _ := reg.Gather(); len(mfs) != 0 {
				t.Fatalf("%d metrics registered", len(mfs))
			}
		})
	}
}
