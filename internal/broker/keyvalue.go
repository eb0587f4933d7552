package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureKeyValue opens the key-value bucket cfg, creating it, or updating it when one
// of the settings liverelay gives it differs, retrying as Retry does. Like the streams
// (ensureStream), a bucket that already has its settings is left alone: every worker
// opens the buckets as it starts, and an update rewrites the bucket's stored
// configuration while other workers create their watchers on it.
func EnsureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := Retry(ctx, func(ctx context.Context) error {
		have, err := js.KeyValue(ctx, cfg.Bucket)
		switch {
		case err == nil:
			st, err := have.Status(ctx)
			if err != nil {
				return err
			}
			if kvHasSettings(st.Config(), cfg) {
				kv = have
				return nil
			}
		case !errors.Is(err, jetstream.ErrBucketNotFound):
			return err
		}
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// kvHasSettings reports whether a bucket's configuration has every setting liverelay
// gives its buckets as want has it.
func kvHasSettings(have, want jetstream.KeyValueConfig) bool {
	return have.Description == want.Description &&
		have.History == max(want.History, 1) &&
		have.TTL == want.TTL &&
		have.LimitMarkerTTL == want.LimitMarkerTTL &&
		have.Storage == want.Storage &&
		have.Replicas == max(want.Replicas, 1)
}
