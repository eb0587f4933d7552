package broker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/broker/brokertest"
)

// Workers that start together on a JetStream cluster all set the streams up at once;
// the server may leave such racing requests unanswered, and every worker must still
// get through.
func TestEnsureConcurrentlyOnACluster(t *testing.T) {
	c := brokertest.StartCluster(t, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		_, js := c.Connect()
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			top := Topology{Stream: "LIVE_EVENTS", Prefix: "live.events", DLQStream: "LIVE_DLQ", DLQPrefix: "live.dlq",
				Partitions: 4, Replicas: 3, DuplicateWindow: time.Minute, MaxAge: time.Hour}
			start := time.Now()
			errs[i] = top.Ensure(ctx, js)
			t.Logf("worker %d set the streams up in %v", i, time.Since(start).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
}
