// Package fence keeps pages from rolling back: it remembers, in a JetStream key-value
// bucket shared by every worker, the newest revision published for each post, and drops
// any render or removal older than that — a late redelivery, a worker that lost its
// partition mid-publish, or a replay of yesterday's dead letter.
package fence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/merge"
)

// Fence is the shared record of published revisions.
//
// Neither publishing nor acking waits on the bucket. While a worker holds a partition
// only it publishes the partition's channels, so its own cache is the truth for them:
// Record updates the cache at once, and Run stores what changed every StoreEvery, one
// compare-and-set write per channel. A worker that dies leaves up to StoreEvery of
// records unstored; the next owner catches up before its first publish (catchup.go):
// it reads the partition's events delivered since the partition's stored mark — the
// stream sequence up to which everything published is stored — and takes their
// revisions as published. docs/architecture.md ("The revision fence") tells the whole
// argument.
type Fence struct {
	stream  jetstream.Stream // the bucket's stream, read directly to see delete markers
	js      jetstream.JetStream
	history History
	pre     string // subject prefix of the bucket's keys
	cfg     Config
	log     *zap.Logger
	metrics metrics

	mu    sync.Mutex
	cache map[string]*entry
	dirty map[string]struct{}
	// dirtySince is when the oldest unstored record was made: dirty was empty before.
	dirtySince time.Time
	parts      map[int]*holding

	round sync.Mutex // one round of writes at a time
}

// History is what the fence reads of a partition (package consumer): how far its
// consumer got, and its events.
type History interface {
	// Progress returns the partition's ack floor (every message up to that stream
	// sequence is acked) and the last stream sequence delivered to any worker.
	Progress(ctx context.Context, partition int) (acked, delivered uint64, err error)
	// Events calls fn with each message of the partition whose stream sequence is in
	// (from, to], in order.
	Events(ctx context.Context, partition int, from, to uint64, fn func(seq uint64, data []byte)) error
}

// entry is the cached state of one channel's key.
type entry struct {
	partition int
	revs      map[string]int64 // newest known revision per post, stored or not
	kvRev     uint64           // the key's revision in the bucket when last read or written
	known     bool             // kvRev and revs reflect a read of the bucket
	readAt    time.Time        // when the bucket was last read or written
}

// holding is what the fence knows of a partition this worker holds. Its fields but
// catching are guarded by Fence.mu.
type holding struct {
	caughtUp bool   // the previous owner's deliveries are read (catchup.go)
	mark     uint64 // its stored mark as this worker last wrote or read it
	markSeq  uint64 // the mark's sequence in the bucket: a write by anyone else moves it
	// delivered is the last sequence delivered to anyone when the partition was
	// caught up, and backlog the events up to it read from the stream, per channel
	// key, not yet taken into the cache.
	delivered uint64
	backlog   map[string][]delivery
	// received holds the sequences up to delivered that came to this worker since it
	// got the partition, and highest the newest sequence it received; they tell which
	// of the backlog will come again (settle). Kept while the backlog is not empty.
	received map[uint64]struct{}
	highest  uint64
	caughtAt time.Time
	catching sync.Mutex
	// failedAt is when the last catch-up failed, with failed its error.
	failedAt time.Time
	failed   error
}

// delivery is an event a previous owner was delivered: its stream sequence and the
// revision of each post it touches (not its content: a long catch-up must stay small).
type delivery struct {
	seq  uint64
	revs []postRevision
}

type postRevision struct {
	post string
	rev  int64
}

// revisionOf is d's revision of post, 0 if d does not touch it.
func (d delivery) revisionOf(post string) int64 {
	for _, pr := range d.revs {
		if pr.post == post {
			return pr.rev
		}
	}
	return 0
}

// DefaultCacheTTL is the CacheTTL of the worker: a channel not checked within it is
// read from the bucket again, so an operator who deleted its key to unfence it waits
// at most this long. A worker forgets its cache of a partition whenever the partition
// comes to it, so another worker's publishes are never missed.
const DefaultCacheTTL = 30 * time.Second

// Config names the bucket and tunes the cache.
type Config struct {
	Bucket   string
	Replicas int
	// TTL is how long a post's revision is remembered after its last publish. A replay
	// of letters older than that is no longer fenced.
	TTL time.Duration
	// CacheTTL is how long a worker trusts its cached entry of a channel (an operator
	// may delete a key to unfence a channel).
	CacheTTL time.Duration
	// StoreEvery is how often recorded revisions are written to the bucket; 0 is
	// DefaultStoreEvery. Longer writes less and leaves more to a next owner's catch-up.
	StoreEvery time.Duration
	// History reads the partitions' progress and events for catch-ups.
	History History
	// Redelivery is how long after a partition came to this worker every message
	// delivered to its previous owner and not acked has been delivered again (the ack
	// wait and a margin); past it, a caught-up event that did not come again was acked.
	Redelivery time.Duration
}

// DefaultStoreEvery: with 1,000 busy channels, a write per channel every 5 s is 200
// writes a second however many events they carry, and a catch-up after a crash reads
// about 5 s of a partition's events.
const DefaultStoreEvery = 5 * time.Second

// Open checks cfg, creates or updates the bucket, and registers the fence's metrics on
// reg.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, reg prometheus.Registerer, log *zap.Logger) (*Fence, error) {
	switch {
	case cfg.CacheTTL <= 0:
		return nil, errors.New("revision fence: CacheTTL must be > 0")
	case cfg.StoreEvery < 0:
		return nil, errors.New("revision fence: StoreEvery must be ≥ 0")
	case cfg.History == nil:
		return nil, errors.New("revision fence: History is required")
	case cfg.Redelivery <= 0:
		return nil, errors.New("revision fence: Redelivery must be > 0")
	case reg == nil || log == nil:
		return nil, errors.New("revision fence: a registry and a logger are required")
	}
	if cfg.StoreEvery == 0 {
		cfg.StoreEvery = DefaultStoreEvery
	}
	_, err := broker.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "liverelay: newest published revision per post, and each partition's stored mark",
		History:     1,
		TTL:         cfg.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, err
	}
	stream, err := js.Stream(ctx, "KV_"+cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", cfg.Bucket, err)
	}
	f := &Fence{stream: stream, js: js, history: cfg.History, pre: "$KV." + cfg.Bucket + ".", cfg: cfg, log: log,
		cache: map[string]*entry{}, dirty: map[string]struct{}{}, parts: map[int]*holding{}}
	f.metrics = newMetrics(f, reg)
	return f, nil
}

// Check drops from u every operation older than the revision already published for
// its post, and returns how many it dropped. Operations without a revision are never
// dropped. first is the stream sequence of the oldest message u comes from. The first
// check of a partition this worker just got catches up first.
func (f *Fence) Check(ctx context.Context, partition int, first uint64, u *merge.Update) (dropped int, err error) {
	if u.MaxRevision() == 0 {
		return 0, nil
	}
	if err := f.catchUp(ctx, partition); err != nil {
		return 0, err
	}
	key := Key(u.Channel)
	if err := f.settle(partition, key, first, u); err != nil {
		return 0, err
	}
	for {
		f.mu.Lock()
		// Trusted only while young: the bucket is read again when the entry is old,
		// even with records still waiting to be stored (refresh keeps those).
		if e := f.cache[key]; e != nil && e.known && time.Since(e.readAt) < f.cfg.CacheTTL {
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
		if err := f.refresh(ctx, partition, key); err != nil {
			return 0, err
		}
	}
}

// Record notes u's revisions as published. It returns at once: the message may be
// acked now, the revisions are stored within StoreEvery.
func (f *Fence) Record(partition int, u *merge.Update) {
	if u.MaxRevision() == 0 {
		return
	}
	f.note(partition, u)
}

// note merges u's revisions into the cache and marks its channel to be stored.
func (f *Fence) note(partition int, u *merge.Update) {
	key := Key(u.Channel)
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.entry(key, partition)
	for _, post := range u.Posts() {
		if rev := u.Revision(post); rev > e.revs[post] {
			e.revs[post] = rev
		}
	}
	f.markDirtyLocked(key)
}

// noteDeliveryLocked takes a caught-up delivery of the channel key as published; f.mu
// is held.
func (f *Fence) noteDeliveryLocked(partition int, key string, d delivery) {
	e := f.entry(key, partition)
	for _, pr := range d.revs {
		if pr.rev > e.revs[pr.post] {
			e.revs[pr.post] = pr.rev
		}
	}
	f.markDirtyLocked(key)
}

// markDirtyLocked queues key for the next round of writes; f.mu is held.
func (f *Fence) markDirtyLocked(key string) {
	if len(f.dirty) == 0 {
		f.dirtySince = time.Now()
	}
	f.dirty[key] = struct{}{}
}

// Lag is how long the oldest recorded revision not yet stored has waited: under
// StoreEvery and a round's writes while the bucket takes them.
func (f *Fence) Lag() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.dirty) == 0 {
		return 0
	}
	return time.Since(f.dirtySince)
}

// Acquire tells the fence that a partition came to this worker (or came back after a
// loss): whoever had it meanwhile may have published, so its cached channels are read
// from the bucket again and the partition catches up before its next check.
func (f *Fence) Acquire(partition int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parts[partition] = &holding{received: map[uint64]struct{}{}}
	for _, e := range f.cache {
		if e.partition == partition {
			e.known = false
		}
	}
}

// Received notes that a message of the partition came to this worker; call it for
// every message, before its update is checked.
func (f *Fence) Received(partition int, seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.parts[partition]
	if h == nil || h.received == nil {
		return
	}
	h.highest = max(h.highest, seq)
	if !h.caughtUp || seq <= h.delivered {
		h.received[seq] = struct{}{}
	}
}

// Release stores what this worker recorded and the partition's mark, so that the next
// owner has nothing to catch up, and forgets the partition. It is best effort: what
// is not stored when ctx ends is the next owner's catch-up.
func (f *Fence) Release(ctx context.Context, partition int) {
	f.store(ctx, partition)
	f.mu.Lock()
	delete(f.parts, partition)
	f.mu.Unlock()
}

// refresh reads a channel's key and merges it into the cache: newest revision per
// post, and the key's last sequence in the bucket (a delete marker's included).
func (f *Fence) refresh(ctx context.Context, partition int, key string) error {
	revs, kvRev, err := f.get(ctx, key)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.entry(key, partition)
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
func (f *Fence) entry(key string, partition int) *entry {
	e := f.cache[key]
	if e == nil {
		e = &entry{partition: partition, revs: map[string]int64{}}
		f.cache[key] = e
	}
	return e
}

// Pending counts the channels whose recorded revisions are not yet stored.
func (f *Fence) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dirty)
}

// evict forgets stored entries that are no longer trusted anyway.
func (f *Fence) evict() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, e := range f.cache {
		if _, dirty := f.dirty[key]; !dirty && time.Since(e.readAt) > f.cfg.CacheTTL {
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
