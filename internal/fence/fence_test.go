package fence

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
)

func open(t *testing.T, js jetstream.JetStream) *Fence {
	t.Helper()
	f, err := Open(context.Background(), js, Config{Bucket: "LIVE_REVISIONS", Replicas: 1, TTL: time.Hour, CacheTTL: 10 * time.Second}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// run runs f's writer until the test ends.
func run(t *testing.T, f *Fence) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx, 5*time.Second)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func update(rev int64, renders []string, removals ...string) *merge.Update {
	u := merge.New("live-blog")
	ev := event.Event{Channel: "live-blog", Removals: removals, Revision: rev}
	for _, id := range renders {
		ev.Renders = append(ev.Renders, event.Render{ID: id, Show: true, Content: id + "@" + strconv.FormatInt(rev, 10)})
	}
	u.Add(ev)
	return u
}

// record records u and waits until it is stored.
func record(t *testing.T, f *Fence, u *merge.Update) {
	t.Helper()
	stored := make(chan struct{})
	f.Record(u, func() { close(stored) })
	select {
	case <-stored:
	case <-time.After(10 * time.Second):
		t.Fatal("revisions not stored within 10s")
	}
}

func TestFenceDropsOlderOperations(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	f := open(t, js)
	run(t, f)
	ctx := context.Background()
	published := update(20, []string{"a", "b"}, "gone")
	if n, err := f.Check(ctx, published); err != nil || n != 0 {
		t.Fatalf("first check dropped %d, %v", n, err)
	}
	record(t, f, published)

	// Another worker (a fresh cache) sees the stored revisions: a replay of an older
	// failure loses the render of a, the removal of b and the render of gone; c is new.
	other := open(t, js)
	old := update(10, []string{"a", "c", "gone"}, "b")
	if n, err := other.Check(ctx, old); err != nil || n != 3 {
		t.Fatalf("dropped %d (%v), want 3", n, err)
	}
	if got := strings.Join(old.Posts(), ","); got != "c" {
		t.Fatalf("left %s, want c", got)
	}
	if n, err := other.Check(ctx, update(30, []string{"a"})); err != nil || n != 0 {
		t.Fatalf("a newer render was dropped: %d %v", n, err)
	}
	if n, err := other.Check(ctx, update(0, []string{"a"})); err != nil || n != 0 {
		t.Fatalf("an operation without revision was dropped: %d %v", n, err)
	}
}

// The worker that recorded a revision fences with it at once, before it is stored,
// and the acks wait until it is stored.
func TestRecordFencesAtOnceAndAcksWhenStored(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	f := open(t, js)
	ctx := context.Background()
	u := update(50, []string{"p"})
	if _, err := f.Check(ctx, u); err != nil {
		t.Fatal(err)
	}
	stored := make(chan struct{})
	f.Record(u, func() { close(stored) })
	if n, err := f.Check(ctx, update(40, []string{"p"})); err != nil || n != 1 {
		t.Fatalf("an older render right after the record: dropped %d (%v), want 1", n, err)
	}
	select {
	case <-stored:
		t.Fatal("acked before the writer ran")
	default:
	}
	if f.Pending() != 1 {
		t.Fatalf("Pending() = %d, want 1", f.Pending())
	}
	run(t, f)
	select {
	case <-stored:
	case <-time.After(10 * time.Second):
		t.Fatal("not stored")
	}
}

// Two workers recording the same channel at once (a partition hand-over) leave the
// newer revision of each post, whatever the order.
func TestRecordKeepsTheNewestUnderRace(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	f, g := open(t, js), open(t, js)
	run(t, f)
	run(t, g)
	ctx := context.Background()
	for round := int64(1); round <= 20; round++ {
		lo, hi := update(round*10, []string{"p", "q"}), update(round*10+5, []string{"p"})
		if _, err := f.Check(ctx, lo); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Check(ctx, hi); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { record(t, f, lo) })
		wg.Go(func() { record(t, g, hi) })
		wg.Wait()
		probe := open(t, js)
		if n, err := probe.Check(ctx, update(round*10+4, []string{"p", "q"})); err != nil || n != 1 {
			t.Fatalf("round %d: want p fenced (revision %d stored) and q not: dropped %d, %v", round, round*10+5, n, err)
		}
	}
}

// When NATS is away the acks wait; when it is back the writer stores and acks.
func TestRecordWaitsForTheBucket(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	f := open(t, js)
	run(t, f)
	ctx := context.Background()
	u := update(7, []string{"p"})
	if _, err := f.Check(ctx, u); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	stored := make(chan struct{})
	f.Record(u, func() { close(stored) })
	select {
	case <-stored:
		t.Fatal("acked while NATS was down")
	case <-time.After(time.Second):
	}
	srv.Restart()
	select {
	case <-stored:
	case <-time.After(20 * time.Second):
		t.Fatal("not stored after NATS came back")
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
// next record must write over it, not retry forever.
func TestRecordWritesOverADeleteMarker(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	f := open(t, js)
	run(t, f)
	ctx := context.Background()
	first := update(10, []string{"p"})
	if _, err := f.Check(ctx, first); err != nil {
		t.Fatal(err)
	}
	record(t, f, first)
	kv, err := js.KeyValue(ctx, "LIVE_REVISIONS")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, Key("live-blog")); err != nil {
		t.Fatal(err)
	}
	// The cached worker and a fresh one both store over the marker.
	record(t, f, update(20, []string{"p"}))
	g := open(t, js)
	run(t, g)
	later := update(30, []string{"q"})
	if _, err := g.Check(ctx, later); err != nil {
		t.Fatal(err)
	}
	record(t, g, later)
}
