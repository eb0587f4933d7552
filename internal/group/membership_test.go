package group

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/broker/brokertest"
)

var fast = Timing{Heartbeat: 200 * time.Millisecond, TTL: time.Second}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMembershipSeesJoinsLeavesAndDeaths(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	ctx := t.Context()
	kv, err := OpenBucket(ctx, js, "TEST_WORKERS", 1, fast)
	if err != nil {
		t.Fatal(err)
	}
	start := func(id string) (*Membership, context.CancelFunc) {
		m := NewMembership(kv, Member{ID: id, Name: "w-" + id, Started: time.Now()}, fast, zaptest.NewLogger(t).Named(id))
		if err := m.Join(ctx); err != nil {
			t.Fatal(err)
		}
		mctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = m.Run(mctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return m, cancel
	}
	a, _ := start("a")
	b, _ := start("b")
	if got := b.Alive(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("b joined and sees %v, want a and b at once", got)
	}
	waitFor(t, "a sees b", func() bool { return slices.Equal(a.Alive(), []string{"a", "b"}) })
	c, stopC := start("c")
	c.SetHolding([]int{3}, map[int]string{3: "PIN"})
	waitFor(t, "a sees c", func() bool { return slices.Equal(a.Alive(), []string{"a", "b", "c"}) })

	// A graceful leave is seen at once.
	left := time.Now()
	b.Leave(ctx)
	waitFor(t, "a sees b leave", func() bool { return slices.Equal(a.Alive(), []string{"a", "c"}) })
	t.Logf("a left member seen gone after %v", time.Since(left).Round(time.Millisecond))

	// c stops heartbeating without leaving, as a killed worker does.
	waitFor(t, "c's pins listed", func() bool {
		members, err := List(ctx, kv)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if m.ID == "c" && m.Pins[3] == "PIN" {
				return true
			}
		}
		return false
	})
	died := time.Now()
	stopC()
	waitFor(t, "a sees c expire", func() bool { return slices.Equal(a.Alive(), []string{"a"}) })
	if d := time.Since(died); d > fast.TTL+2*time.Second {
		t.Fatalf("a dead member was noticed after %v; the TTL is %v", d, fast.TTL)
	}
	t.Logf("a dead member seen gone after %v (TTL %v)", time.Since(died).Round(time.Millisecond), fast.TTL)
}

func TestListSkipsEntriesThatAreNoMember(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	ctx := t.Context()
	kv, err := OpenBucket(ctx, js, "TEST_WORKERS", 1, Timing{Heartbeat: time.Second, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for key, value := range map[string]string{
		"b":     `{"id":"b","name":"beta","started":"2026-11-29T15:00:00Z","pins":{"2":"P2"}}`,
		"a":     `{"id":"a","name":"alpha","started":"2026-11-29T15:00:00Z"}`,
		"junk":  `not json`,
		"other": `{"id":"someone-else","name":"impostor"}`,
		"gone":  `{"id":"gone","name":"gone"}`,
	} {
		if _, err := kv.PutString(ctx, key, value); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	members, err := List(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range members {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"alpha", "beta"}) || members[1].Pins[2] != "P2" {
		t.Fatalf("listed %v (%+v), want alpha and beta with beta's pin", names, members)
	}
}

// A timing under which members would expire between heartbeats is refused before the
// bucket is created.
func TestOpenBucketRefusesABadTimingBeforeCreatingIt(t *testing.T) {
	srv := brokertest.Start(t)
	_, js := srv.Connect()
	for _, tm := range []Timing{{}, {Heartbeat: time.Second, TTL: time.Second}, {Heartbeat: -time.Second, TTL: time.Second}} {
		if _, err := OpenBucket(t.Context(), js, "TEST_WORKERS", 1, tm); err == nil {
			t.Errorf("OpenBucket accepted %+v", tm)
		}
	}
	if _, err := OpenBucket(t.Context(), js, "", 1, fast); err == nil {
		t.Error("OpenBucket accepted an empty bucket name")
	}
	if n := srv.Streams(); n != 0 {
		t.Fatalf("%d streams were created", n)
	}
}
