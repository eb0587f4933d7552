package fence

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
)

func open(t *testing.T) (*Fence, *brokertest.Server) {
	t.Helper()
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	f, err := Open(context.Background(), js, Config{Bucket: "LIVE_REVISIONS", Replicas: 1, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return f, srv
}

func update(rev int64, renders []string, removals ...string) *merge.Update {
	u := merge.New("live-blog")
	ev := event.Event{Channel: "live-blog", Removals: removals, Revision: rev}
	for _, id := range renders {
		ev.Renders = append(ev.Renders, event.Render{ID: id, Show: true, Content: id + "@" + string(rune('0'+rev%10))})
	}
	u.Add(ev)
	return u
}

func TestFenceDropsOlderOperations(t *testing.T) {
	f, _ := open(t)
	ctx := context.Background()
	published := update(20, []string{"a", "b"}, "gone")
	if n, s, err := f.Check(ctx, published); err != nil || n != 0 {
		t.Fatalf("first check dropped %d, %v", n, err)
	} else if err := f.Record(ctx, published, s); err != nil {
		t.Fatal(err)
	}

	// A replay of an older failure: the render of a, the removal of b and the render
	// of gone are older than what readers have; c is new.
	old := update(10, []string{"a", "c", "gone"}, "b")
	n, _, err := f.Check(ctx, old)
	if err != nil || n != 3 {
		t.Fatalf("dropped %d (%v), want 3", n, err)
	}
	if got := strings.Join(old.Posts(), ","); got != "c" {
		t.Fatalf("left %s, want c", got)
	}
	newer := update(30, []string{"a"})
	if n, _, err := f.Check(ctx, newer); err != nil || n != 0 {
		t.Fatalf("a newer render was dropped: %d %v", n, err)
	}
	unrevised := update(0, []string{"a"})
	if n, _, err := f.Check(ctx, unrevised); err != nil || n != 0 {
		t.Fatalf("an operation without revision was dropped: %d %v", n, err)
	}
}

// Two workers recording the same post at once (a partition hand-over) leave the newer
// revision, whatever the order.
func TestFenceRecordKeepsTheNewestUnderRace(t *testing.T) {
	f, srv := open(t)
	_, js := srv.Connect()
	g, err := Open(context.Background(), js, Config{Bucket: "LIVE_REVISIONS", Replicas: 1, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for round := int64(1); round <= 20; round++ {
		lo, hi := update(round*10, []string{"p"}), update(round*10+5, []string{"p"})
		_, sLo, _ := f.Check(ctx, lo)
		_, sHi, _ := g.Check(ctx, hi)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := f.Record(ctx, lo, sLo); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if err := g.Record(ctx, hi, sHi); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		probe := update(round*10+4, []string{"p"})
		if n, _, err := f.Check(ctx, probe); err != nil || n != 1 {
			t.Fatalf("round %d: revision %d was not fenced (dropped %d, %v)", round, round*10+4, n, err)
		}
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
