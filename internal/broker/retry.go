package broker

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// attemptTimeout bounds one JetStream API call made while setting up streams,
// buckets and consumers.
const attemptTimeout = 2 * time.Second

// errNoPeers is JetStream's "no suitable peers for placement": a cluster that is
// still gathering its nodes, or too few nodes for the replicas asked for.
const errNoPeers jetstream.ErrorCode = 10005

// Retry runs an idempotent set-up call (a create-or-update) with a time limit per
// attempt, again until it succeeds or ctx ends. In a JetStream cluster, workers that
// start together race to create the same stream, and the server may then leave a
// request unanswered; a new attempt finds the stream and goes through. A cluster
// that is still starting has too few peers for a while; that is retried too, and if
// it lasts, its error is returned when ctx ends.
func Retry(ctx context.Context, call func(ctx context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := call(actx)
		cancel()
		var api *jetstream.APIError
		transient := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &api) && api.ErrorCode == errNoPeers
		if err == nil || ctx.Err() != nil || !transient {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
