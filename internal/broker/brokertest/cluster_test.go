package brokertest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The cluster stores a replicated stream and keeps it through the loss of a node.
func TestClusterKeepsAReplicatedStream(t *testing.T) {
	c := StartCluster(t, 3)
	_, js := c.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "r3.a", []byte("one")); err != nil {
		t.Fatal(err)
	}
	c.Server(0).Shutdown()
	deadline := time.Now().Add(20 * time.Second)
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.Publish(actx, "r3.a", []byte("two"), jetstream.WithMsgID("two"))
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish after a node loss: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s, err := js.Stream(ctx, "R3")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
}
