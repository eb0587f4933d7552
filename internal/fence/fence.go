// Package fence keeps pages from rolling back: it remembers, in a JetStream key-value
// bucket shared by every worker, the newest revision published for each post, and drops
// any render or removal older than that — a late redelivery, a worker that lost its
// partition mid-publish, or a replay of yesterday's dead letter (design.md §3.3).
package fence

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
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

// MaxPosts bounds the posts remembered per channel; past it the oldest revisions are
// forgotten (they could only fence replays of very old letters).
const MaxPosts = 20000

// Key is the bucket key of a channel: a hash, since channel ids may hold bytes that
// keys may not. One entry per channel holds the revisions of all its posts, so that a
// publish costs one read and one write, whatever the number of posts it touches.
func Key(channel string) string {
	h := sha256.Sum256([]byte(channel))
	return hex.EncodeToString(h[:16])
}

// Seen is what Check read, for Record to update without reading again.
type Seen struct {
	kvRev uint64           // the entry's revision in the bucket; 0 when absent
	revs  map[string]int64 // post id → newest published revision
}

// Check drops from u every operation older than the revision already published for
// its post, and returns how many it dropped and what it read. Operations without a
// revision are never dropped.
func (f *Fence) Check(ctx context.Context, u *merge.Update) (dropped int, s Seen, err error) {
	if u.MaxRevision() == 0 {
		return 0, s, nil
	}
	if s, err = f.get(ctx, Key(u.Channel)); err != nil {
		return 0, s, err
	}
	for _, post := range u.Posts() {
		if rev := u.Revision(post); rev != 0 && rev < s.revs[post] {
			u.Drop(post)
			dropped++
		}
	}
	return dropped, s, nil
}

// Record stores the revisions of u's operations as published, keeping the newer of
// the stored and the new one when another worker wrote in between.
func (f *Fence) Record(ctx context.Context, u *merge.Update, s Seen) error {
	if u.MaxRevision() == 0 {
		return nil
	}
	key := Key(u.Channel)
	for attempt := 0; ; attempt++ {
		revs := make(map[string]int64, len(s.revs)+8)
		for id, rev := range s.revs {
			revs[id] = rev
		}
		changed := false
		for _, post := range u.Posts() {
			if rev := u.Revision(post); rev > revs[post] {
				revs[post] = rev
				changed = true
			}
		}
		if !changed {
			return nil
		}
		err := f.put(ctx, key, encode(revs), s.kvRev)
		if err == nil {
			return nil
		}
		if attempt == 2 || !isConflict(err) {
			return fmt.Errorf("record revisions of channel %q: %w", u.Channel, err)
		}
		// Another worker wrote in between: read again and merge.
		if s, err = f.get(ctx, key); err != nil {
			return err
		}
	}
}

func (f *Fence) get(ctx context.Context, key string) (Seen, error) {
	e, err := f.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Seen{}, nil
	}
	if err != nil {
		return Seen{}, fmt.Errorf("read revisions: %w", err)
	}
	revs, err := decode(e.Value())
	if err != nil {
		return Seen{}, fmt.Errorf("revisions entry %s: %w", key, err)
	}
	return Seen{kvRev: e.Revision(), revs: revs}, nil
}

func (f *Fence) put(ctx context.Context, key string, val []byte, last uint64) error {
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

// encode writes revs as (uvarint length, id, varint revision) records, newest
// revisions kept when there are more than MaxPosts.
func encode(revs map[string]int64) []byte {
	type pair struct {
		id  string
		rev int64
	}
	pairs := make([]pair, 0, len(revs))
	for id, rev := range revs {
		pairs = append(pairs, pair{id, rev})
	}
	if len(pairs) > MaxPosts {
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].rev > pairs[j].rev })
		pairs = pairs[:MaxPosts]
	}
	var out []byte
	for _, p := range pairs {
		out = binary.AppendUvarint(out, uint64(len(p.id)))
		out = append(out, p.id...)
		out = binary.AppendVarint(out, p.rev)
	}
	return out
}

func decode(b []byte) (map[string]int64, error) {
	revs := map[string]int64{}
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errors.New("corrupt post id")
		}
		id := string(b[k : k+int(n)])
		b = b[k+int(n):]
		rev, k := binary.Varint(b)
		if k <= 0 {
			return nil, errors.New("corrupt revision")
		}
		b = b[k:]
		revs[id] = rev
	}
	return revs, nil
}
