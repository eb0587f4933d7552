package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/publish/pushertest"
)

// TestClusterNodeLossLosesNothing: two workers on a 3-node JetStream cluster with
// replicated (R3) streams; one node is shut down mid-stream. The workers carry on
// through the other two, and readers end with the CMS's pages, in order.
func TestClusterNodeLossLosesNothing(t *testing.T) {
	// On demand, not in CI: three servers and two workers in one process, and its
	// failures were intermittent until the take-over in stream order and the bounded
	// history read (docs/scaling.md, "Known limits"):
	//   LIVERELAY_CLUSTER_TEST=1 go test -race ./cmd/worker -run TestClusterNodeLoss -count=5
	if os.Getenv("LIVERELAY_CLUSTER_TEST") == "" {
		t.Skip("runs on demand; set LIVERELAY_CLUSTER_TEST=1 to run it")
	}
	cluster := brokertest.StartCluster(t, 3)
	h := newHarness(t) // its single server stays unused
	_, h.js = cluster.Connect()
	h.cfg.NATSURL = cluster.URLs()
	h.cfg.Replicas = 3
	h.cfg.WorkerName = "a"
	h.startWorker()
	h.cfg.WorkerName = "b"
	h.startWorker()
	// Both workers set the streams up at once (the cluster may leave one of the racing
	// requests unanswered: they retry); wait until they consume.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := h.undelivered(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the workers did not set the streams up within 60s")
		}
		time.Sleep(50 * time.Millisecond) // polling the server
	}
	gen := smallBlogs(80, 17)
	want := cms{}
	want.send(t, gen, 3000, h.publishRetrying, func(i int, _ event.Event) {
		if i == 1000 {
			wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			// Merged per channel, the first thousand events make about one update per
			// channel: wait until the workers deliver.
			err := h.pusher.Wait(wctx, func(e []pushertest.Event) bool { return len(e) >= 40 })
			cancel()
			if err != nil {
				for p := 0; p < h.cfg.Partitions; p++ {
					c, cerr := h.js.Consumer(context.Background(), h.cfg.Stream, fmt.Sprintf("%s_P%d", h.cfg.Stream, p))
					if cerr == nil {
						i := c.CachedInfo()
						t.Logf("P%d: pending %d ack pending %d waiting %d groups %+v leader %+v", p, i.NumPending, i.NumAckPending, i.NumWaiting, i.PriorityGroups, i.Cluster)
					}
				}
				t.Fatalf("%d events delivered: %v", len(h.pusher.Events()), err)
			}
			// Take down the node that leads the event stream: its consumers and the
			// stream itself elect new leaders while events keep coming.
			leader := streamLeader(t, h)
			left, err := h.undelivered()
			t.Logf("shutting down %s, the event stream's leader, with %d events undelivered (%v)", leader, left, err)
			cluster.ServerNamed(leader).Shutdown()
		}
	})
	h.waitDelivered(120 * time.Second)
	// Nothing lost, every post in the CMS's order, and no post's content rolled back.
	want.check(t, h.pages())
	revisionsInOrder(t, h.pusher.Events())
}

func streamLeader(t *testing.T, h *harness) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := h.js.Stream(ctx, h.cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("stream %s has no leader: %v", h.cfg.Stream, err)
	}
	return info.Cluster.Leader
}
