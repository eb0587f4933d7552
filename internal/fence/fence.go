// Package fence keeps pages from rolling back: it remembers, in a JetStream key-value
// bucket shared by every worker, the newest revision published for each post, and drops
// any render or removal older than that — a late redelivery, a worker that lost its
// partition mid-publish, or a replay of yesterday's dead letter (design.md §3.3).
package fence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/merge"
)

// Fence is the shared record of published revisions.
type Fence struct {
	kv jetstream.KeyValue
}

// Config names the bucket.
type Config struct {
	Bucket   string
	Replicas int
	// TTL is how long a post's revision is remembered after its last publish. A replay
	// of letters older than that is no longer fenced.
	TTL time.Duration
}

// Open creates or updates the bucket.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Fence, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "liverelay: newest published revision per post",
		History:     1,
		TTL:         cfg.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", cfg.Bucket, err)
	}
	return &Fence{kv: kv}, nil
}

// Key is the bucket key of a post of a channel: a hash, since post ids and channel ids
// may hold bytes that keys may not.
func Key(channel, post string) string {
	h := sha256.New()
	h.Write([]byte(channel))
	h.Write([]byte{0})
	h.Write([]byte(post))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Seen is what Check read, for Record to update without reading again.
type Seen map[string]seen

type seen struct {
	rev   int64  // the published revision; 0 when none
	kvRev uint64 // the entry's revision in the bucket; 0 when absent
}

// Check drops from u every operation older than the revision already published for
// its post, and returns how many it dropped and what it read. Operations without a
// revision are never dropped.
func (f *Fence) Check(ctx context.Context, u *merge.Update) (dropped int, s Seen, err error) {
	s = Seen{}
	for _, post := range u.Posts() {
		rev := u.Revision(post)
		if rev == 0 {
			continue
		}
		key := Key(u.Channel, post)
		cur, err := f.get(ctx, key)
		if err != nil {
			return dropped, s, err
		}
		s[key] = cur
		if rev < cur.rev {
			u.Drop(post)
			dropped++
		}
	}
	return dropped, s, nil
}

// Record stores the revisions of u's operations as published, keeping the newer of
// the stored and the new one when another worker wrote in between.
func (f *Fence) Record(ctx context.Context, u *merge.Update, s Seen) error {
	var errs []error
	for _, post := range u.Posts() {
		rev := u.Revision(post)
		if rev == 0 {
			continue
		}
		key := Key(u.Channel, post)
		cur, ok := s[key]
		for attempt := 0; ; attempt++ {
			if !ok {
				var err error
				if cur, err = f.get(ctx, key); err != nil {
					errs = append(errs, err)
					break
				}
			}
			if cur.rev >= rev {
				break
			}
			err := f.put(ctx, key, rev, cur.kvRev)
			if err == nil {
				break
			}
			if attempt == 2 || !isConflict(err) {
				errs = append(errs, fmt.Errorf("record revision of post %q: %w", post, err))
				break
			}
			ok = false // another worker wrote: read again
		}
	}
	return errors.Join(errs...)
}

func (f *Fence) get(ctx context.Context, key string) (seen, error) {
	e, err := f.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return seen{}, nil
	}
	if err != nil {
		return seen{}, fmt.Errorf("read revision: %w", err)
	}
	rev, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return seen{}, fmt.Errorf("revision entry %s holds %q: %w", key, e.Value(), err)
	}
	return seen{rev: rev, kvRev: e.Revision()}, nil
}

func (f *Fence) put(ctx context.Context, key string, rev int64, last uint64) error {
	val := []byte(strconv.FormatInt(rev, 10))
	if last == 0 {
		_, err := f.kv.Create(ctx, key, val)
		return err
	}
	_, err := f.kv.Update(ctx, key, val, last)
	return err
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
}
