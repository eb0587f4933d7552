// Package fence keeps pages from rolling back: it remembers, in a JetStream key-value
// bucket shared by every worker, the newest revision published for each post, and drops
// any render or removal older than that — a late redelivery, a worker that lost its
// partition mid-publish, or a replay of yesterday's dead letter.
package fence

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/merge"
)

// Fence is the shared record of published revisions.
//
// Publishing must not wait on it: with fsync on every write (the safe setting), one
// key-value write per publish would cost more than the publish. So each worker keeps
// a cache of the channels it publishes: Check reads the bucket only for a channel it
// has not seen within CacheTTL, and Record updates the cache at once and leaves the
// write to Run, which coalesces the records of a channel into one compare-and-set write
// and only then runs their done callbacks (the acks). While a worker holds a
// partition, only it publishes the partition's channels; when a partition comes to
// it, Forget makes it read the bucket again, so a cached entry cannot hide what the
// previous owner wrote. A compare-and-set conflict still catches a race and merges
// both.
type Fence struct {
	stream jetstream.Stream // the bucket's stream, read directly to see delete markers
	js     jetstream.JetStream
	pre    string // subject prefix of the bucket's keys
	ttl    time.Duration
	log    *zap.Logger

	mu    sync.Mutex
	cache map[string]*entry
	dirty map[string]struct{}
	kick  chan struct{}
}

// entry is the cached state of one channel's key.
type entry struct {
	revs   map[string]int64 // newest known revision per post, written or not
	kvRev  uint64           // the key's revision in the bucket when last read or written
	known  bool             // kvRev and revs reflect a read of the bucket
	readAt time.Time        // when the bucket was last read or written
	acks   []func()         // to run once the pending revisions are stored
}

// Config names the bucket.
type Config struct {
	Bucket   string
	Replicas int
	// TTL is how long a post's revision is remembered after its last publish. A replay
	// of letters older than that is no longer fenced.
	TTL time.Duration
	// CacheTTL is how long a worker trusts its cached entry of a channel (an operator
	// may delete a key to unfence a channel).
	CacheTTL time.Duration
}

// Open creates or updates the bucket.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, log *zap.Logger) (*Fence, error) {
	err := broker.Retry(ctx, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      cfg.Bucket,
			Description: "liverelay: newest published revision per post",
			History:     1,
			TTL:         cfg.TTL,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", cfg.Bucket, err)
	}
	stream, err := js.Stream(ctx, "KV_"+cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", cfg.Bucket, err)
	}
	if cfg.CacheTTL <= 0 {
		return nil, errors.New("revision fence: CacheTTL must be > 0")
	}
	return &Fence{stream: stream, js: js, pre: "$KV." + cfg.Bucket + ".", ttl: cfg.CacheTTL, log: log, cache: map[string]*entry{}, dirty: map[string]struct{}{}, kick: make(chan struct{}, 1)}, nil
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

// Check drops from u every operation older than the revision already published for
// its post, and returns how many it dropped. Operations without a revision are never
// dropped.
func (f *Fence) Check(ctx context.Context, u *merge.Update) (dropped int, err error) {
	if u.MaxRevision() == 0 {
		return 0, nil
	}
	key := Key(u.Channel)
	for {
		f.mu.Lock()
		// Trusted only while young: the bucket is read again when the entry is old,
		// even with records still waiting to be stored (refresh keeps those).
		if e := f.cache[key]; e != nil && e.known && time.Since(e.readAt) < f.ttl {
			for _, post := range u.Posts() {
				if rev := u.Revision(post); rev != 0 && rev < e.revs[post] {
					u.Drop(post)
					dropped++
				}
			}
			f.mu.Unlock()
			return dropped, nil
		}
		f.mu.Unlock()
		if err := f.refresh(ctx, key); err != nil {
			return 0, err
		}
	}
}

// refresh reads a channel's key and merges it into the cache: newest revision per
// post, and the key's last sequence in the bucket (a delete marker's included).
func (f *Fence) refresh(ctx context.Context, key string) error {
	revs, kvRev, err := f.get(ctx, key)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.entry(key)
	for id, rev := range revs {
		if rev > e.revs[id] {
			e.revs[id] = rev
		}
	}
	e.kvRev = max(e.kvRev, kvRev)
	e.known, e.readAt = true, time.Now()
	return nil
}

// entry returns key's cache entry, creating it; f.mu is held.
func (f *Fence) entry(key string) *entry {
	e := f.cache[key]
	if e == nil {
		e = &entry{revs: map[string]int64{}}
		f.cache[key] = e
	}
	return e
}

// Forget makes every cached entry be read from the bucket again before it is trusted:
// call it when a partition comes to this worker, whose previous owner may have
// published its channels meanwhile. Records still waiting to be stored are kept.
func (f *Fence) Forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.cache {
		e.known = false
	}
}

// Record notes u's revisions as published and returns at once; done runs once they
// are stored in the bucket. If they cannot be stored before Run stops, done never
// runs: the messages it would ack are delivered again, and fenced.
func (f *Fence) Record(u *merge.Update, done func()) {
	if u.MaxRevision() == 0 {
		done()
		return
	}
	key := Key(u.Channel)
	f.mu.Lock()
	e := f.entry(key)
	for _, post := range u.Posts() {
		if rev := u.Revision(post); rev > e.revs[post] {
			e.revs[post] = rev
		}
	}
	e.acks = append(e.acks, done)
	f.dirty[key] = struct{}{}
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run writes recorded revisions until ctx is cancelled, then writes what is still
// pending for up to flushTimeout and returns.
func (f *Fence) Run(ctx context.Context, flushTimeout time.Duration) error {
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		select {
		case <-f.kick:
			// Let records gather for a moment: a channel published several times in
			// that time is written once.
			wait(ctx, gather)
			if !f.writeDirty(ctx) {
				wait(ctx, retryPause) // the bucket is failing: do not spin
			}
		case <-sweep.C:
			f.evict()
		case <-ctx.Done():
			flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
			defer cancel()
			for f.pending() > 0 && flush.Err() == nil {
				if !f.writeDirty(flush) {
					wait(flush, retryPause)
				}
			}
			if n := f.pending(); n > 0 {
				f.log.Warn("revisions not stored at shutdown; their messages will be delivered again", zap.Int("channels", n))
			}
			return nil
		}
	}
}

func (f *Fence) pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dirty)
}

// gather is how long records collect before a round of writes; it delays acks, not
// publishes.
const gather = 20 * time.Millisecond

// retryPause is the wait after a round of writes that failed.
const retryPause = 500 * time.Millisecond

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// roundTimeout bounds one round of writes: a write whose reply is lost (a leader that
// died after storing it) must not hold every later ack of the worker.
const roundTimeout = 15 * time.Second

// writeDirty writes every dirty key once, all at once (pipelined, so that the server
// can share its fsyncs among them); it reports whether all writes succeeded.
func (f *Fence) writeDirty(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, roundTimeout)
	defer cancel()
	f.mu.Lock()
	keys := make([]string, 0, len(f.dirty))
	for k := range f.dirty {
		keys = append(keys, k)
	}
	clear(f.dirty)
	f.mu.Unlock()

	type write struct {
		key  string
		e    *entry
		acks []func()
		pa   jetstream.PubAckFuture
	}
	writes := make([]write, 0, len(keys))
	ok := true
	for _, key := range keys {
		f.mu.Lock()
		e := f.cache[key]
		known := e.known
		f.mu.Unlock()
		if !known {
			if err := f.refresh(ctx, key); err != nil {
				f.retryLater(key, err)
				ok = false
				continue
			}
		}
		f.mu.Lock()
		val, last, acks := encode(e.revs), e.kvRev, e.acks
		e.acks = nil
		f.mu.Unlock()
		pa, err := f.js.PublishMsgAsync(&nats.Msg{Subject: f.pre + key, Data: val}, jetstream.WithExpectLastSequencePerSubject(last))
		if err != nil {
			f.requeue(e, acks)
			f.retryLater(key, err)
			ok = false
			continue
		}
		writes = append(writes, write{key: key, e: e, acks: acks, pa: pa})
	}
	for _, w := range writes {
		var err error
		select {
		case ack := <-w.pa.Ok():
			f.mu.Lock()
			w.e.kvRev, w.e.readAt = max(w.e.kvRev, ack.Sequence), time.Now()
			f.mu.Unlock()
			for _, done := range w.acks {
				done()
			}
			continue
		case err = <-w.pa.Err():
		case <-ctx.Done():
			err = ctx.Err()
		}
		ok = false
		f.requeue(w.e, w.acks)
		if isConflict(err) {
			// Another worker wrote in between: merge its revisions, write next round.
			if rerr := f.refresh(ctx, w.key); rerr != nil {
				err = rerr
			}
		}
		if !isConflict(err) || ctx.Err() != nil {
			f.retryLater(w.key, err)
		} else {
			f.markDirty(w.key)
		}
	}
	return ok
}

// requeue puts acks back in front of the ones recorded since.
func (f *Fence) requeue(e *entry, acks []func()) {
	f.mu.Lock()
	e.acks = append(acks, e.acks...)
	f.mu.Unlock()
}

func (f *Fence) retryLater(key string, err error) {
	f.log.Warn("could not store published revisions; will retry", zap.Error(err))
	f.markDirty(key)
}

// markDirty queues key for the next round of writes.
func (f *Fence) markDirty(key string) {
	f.mu.Lock()
	f.dirty[key] = struct{}{}
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Instrument exposes the number of channels waiting for a store, on reg.
func (f *Fence) Instrument(reg prometheus.Registerer) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "liverelay_fence_pending_channels",
		Help: "Channels whose published revisions are not yet stored in the fence bucket; their acks wait."},
		func() float64 { return float64(f.Pending()) }))
}

// Pending counts the channels whose revisions are recorded but not yet stored.
func (f *Fence) Pending() int { return f.pending() }

// evict forgets clean entries that are no longer trusted anyway.
func (f *Fence) evict() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, e := range f.cache {
		if _, dirty := f.dirty[key]; !dirty && len(e.acks) == 0 && time.Since(e.readAt) > f.ttl {
			delete(f.cache, key)
		}
	}
}

// get reads the last message of a key's subject in the bucket's stream: its revisions,
// and its sequence — also for a delete or purge marker, which kv.Get would hide and a
// compare-and-set write must name.
func (f *Fence) get(ctx context.Context, key string) (map[string]int64, uint64, error) {
	m, err := f.stream.GetLastMsgForSubject(ctx, f.pre+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read revisions: %w", err)
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return nil, m.Sequence, nil
	}
	revs, err := decode(m.Data)
	if err != nil {
		return nil, 0, fmt.Errorf("revisions entry %s: %w", key, err)
	}
	return revs, m.Sequence, nil
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
