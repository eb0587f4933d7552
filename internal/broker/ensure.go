package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Set-up that leaves alone what already has liverelay's settings. Every worker sets
// the streams, the consumers and the key-value buckets up as it starts; an update, even
// to the same settings, rewrites the stored configuration on the server, and
// nats-server reads a stream's stored configuration without a lock while it creates a
// consumer on it (the race detector caught it with workers starting together). So each
// is looked up first, and created or updated only when a setting differs.

// ensureStream creates the stream cfg, or updates it to cfg when one of liverelay's
// settings differs, retrying while the set-up call goes unanswered or the cluster is
// short of peers (see Retry).
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	err := Retry(ctx, func(ctx context.Context) error {
		s, err := js.Stream(ctx, cfg.Name)
		if err == nil && streamHasSettings(s.CachedInfo().Config, cfg) {
			return nil
		}
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
		_, err = js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	if err != nil {
		return fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
	}
	return nil
}

// streamHasSettings reports whether a stream's configuration has every setting liverelay
// gives its streams as want has it. A duplicate window of 0 leaves the server's
// default, whatever it is.
func streamHasSettings(have, want jetstream.StreamConfig) bool {
	return have.Description == want.Description &&
		slices.Equal(have.Subjects, want.Subjects) &&
		sameTransform(have.SubjectTransform, want.SubjectTransform) &&
		have.Storage == want.Storage &&
		have.Retention == want.Retention &&
		have.Replicas == max(want.Replicas, 1) &&
		(want.Duplicates == 0 || have.Duplicates == want.Duplicates) &&
		have.MaxAge == want.MaxAge &&
		have.Discard == want.Discard
}

func sameTransform(a, b *jetstream.SubjectTransformConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// ensureConsumers creates the durable consumers cfgs on stream, or updates those
// whose settings differ, after reading them all with one listing; it retries as Retry
// does.
func ensureConsumers(ctx context.Context, js jetstream.JetStream, stream string, cfgs ...jetstream.ConsumerConfig) error {
	have, err := consumerConfigs(ctx, js, stream)
	if err != nil {
		return err
	}
	for _, cfg := range cfgs {
		if cur, ok := have[cfg.Durable]; ok && consumerHasSettings(cur, cfg) {
			continue
		}
		err := Retry(ctx, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
			return err
		})
		if err != nil {
			return fmt.Errorf("create or update consumer %s: %w", cfg.Durable, err)
		}
	}
	return nil
}

// consumerConfigs reads the configuration of every consumer of stream, by name, with
// one listing.
func consumerConfigs(ctx context.Context, js jetstream.JetStream, stream string) (map[string]jetstream.ConsumerConfig, error) {
	var out map[string]jetstream.ConsumerConfig
	err := Retry(ctx, func(ctx context.Context) error {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		out = map[string]jetstream.ConsumerConfig{}
		list := s.ListConsumers(ctx)
		for info := range list.Info() {
			out[info.Name] = info.Config
		}
		return list.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list the consumers of stream %s: %w", stream, err)
	}
	return out, nil
}

// consumerHasSettings reports whether a consumer's configuration has every setting
// liverelay gives its consumers as want has it. A MaxDeliver of 0 is the server's
// unlimited, -1.
func consumerHasSettings(have, want jetstream.ConsumerConfig) bool {
	maxDeliver := want.MaxDeliver
	if maxDeliver == 0 {
		maxDeliver = -1
	}
	return have.Description == want.Description &&
		have.FilterSubject == want.FilterSubject &&
		have.DeliverPolicy == want.DeliverPolicy &&
		have.AckPolicy == want.AckPolicy &&
		have.AckWait == want.AckWait &&
		have.MaxDeliver == maxDeliver &&
		have.MaxAckPending == want.MaxAckPending &&
		have.PriorityPolicy == want.PriorityPolicy &&
		slices.Equal(have.PriorityGroups, want.PriorityGroups) &&
		have.PinnedTTL == want.PinnedTTL
}

// EnsureKeyValue opens the key-value bucket cfg, creating it, or updating it when one
// of liverelay's settings differs, retrying as Retry does.
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
