package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/broker"
)

// undelivered counts the messages of top's partition consumers not yet acked.
func undelivered(ctx context.Context, js jetstream.JetStream, top broker.Topology) (int, error) {
	total := 0
	for p := 0; p < top.Partitions; p++ {
		c, err := js.Consumer(ctx, top.Stream, top.ConsumerName(p))
		if err != nil {
			return 0, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return 0, err
		}
		total += int(info.NumPending) + info.NumAckPending
	}
	return total, nil
}

// waitDrained polls every poll until every message is acked and returns when that was
// seen. Each poll asks the server about every partition consumer: a short poll times
// the end finely and costs the server more CPU. watch, when not nil, is told each
// count of undelivered messages seen.
func waitDrained(ctx context.Context, js jetstream.JetStream, top broker.Topology, timeout, poll time.Duration, watch func(undelivered int)) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		n, err := undelivered(ctx, js, top)
		if err == nil && watch != nil {
			watch(n)
		}
		if err == nil && n == 0 {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%d messages still undelivered after %v (last error: %v)", n, timeout, err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}
