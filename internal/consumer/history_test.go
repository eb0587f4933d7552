package consumer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/broker/topologytest"
)

// partitionWithEvents starts a server with a one-partition event stream holding n
// events, at stream sequences 1 to n, and returns the server and the history reader.
func partitionWithEvents(t *testing.T, n int) (*brokertest.Server, *History) {
	t.Helper()
	srv, js, top := topologytest.Start(t, 1)
	for i := range n {
		publish(t, js, top, "live", fmt.Sprint("post-", i))
	}
	return srv, NewHistory(topologytest.Stream(t, js, top.Stream), top)
}

// A read of a partition's history ends soon after its context does, even when the
// server goes away in the middle of it: the fence's catch-up reads it from a publisher,
// and a read that never ended would hold that publisher, then every publisher of the
// worker, and the worker would stop publishing.
func TestHistoryReadEndsWhenTheServerGoesAway(t *testing.T) {
	const events = historyBatch + 100 // more than one read
	srv, h := partitionWithEvents(t, events)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var gone sync.Once
	read := 0
	done := make(chan error, 1)
	go func() {
		done <- h.Events(ctx, 0, 0, events, func(uint64, []byte) {
			read++
			gone.Do(srv.Shutdown)
		})
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("the read ended without an error after %d of %d events, though the server went away", read, events)
		}
		t.Logf("the read ended after %d events: %v", read, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the read did not end 28 s after its context did")
	}
}

// A read gives every event of the partition in (from, to], in stream order, across
// several fetches, and none of the others.
func TestHistoryReadsTheRangeInOrder(t *testing.T) {
	const events = historyBatch*2 + 10
	_, h := partitionWithEvents(t, events)
	const from, to = 3, events - 2
	var got []uint64
	if err := h.Events(context.Background(), 0, from, to, func(seq uint64, _ []byte) { got = append(got, seq) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != to-from || got[0] != from+1 || got[len(got)-1] != to {
		t.Fatalf("read %d events, want %d: from %d to %d", len(got), to-from, from+1, to)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("event %d follows %d", got[i], got[i-1])
		}
	}
}

// A read that finds nothing more short of its end asks the stream's leader whether the
// end exists: if it does, the server read from was behind and the read fails; if it was
// removed since, the read is complete.
func TestHistoryReadThatEndsEarlyAsksTheLeader(t *testing.T) {
	_, h := partitionWithEvents(t, 5)
	ctx := context.Background()
	if err := h.endsBefore(ctx, 0, 3, 5); err == nil {
		t.Error("a read that stopped at 3 though event 5 exists ended without an error")
	}
	if err := h.endsBefore(ctx, 0, 5, 9); err != nil {
		t.Errorf("a read whose end no longer exists: %v", err)
	}
	var got []uint64
	if err := h.Events(ctx, 0, 2, 9, func(seq uint64, _ []byte) { got = append(got, seq) }); err != nil || len(got) != 3 {
		t.Errorf("reading (2, 9] of five events: %v, %v", got, err)
	}
}
