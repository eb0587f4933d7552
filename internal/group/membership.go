package group

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
)

// Member is what a worker announces about itself.
type Member struct {
	ID      string         `json:"id"`   // unique per process: the bucket key
	Name    string         `json:"name"` // LIVE_WORKER_NAME, for people
	Started time.Time      `json:"started"`
	Pulling []int          `json:"pulling,omitempty"` // partitions it pulls (the assignment as it sees it)
	Pins    map[int]string `json:"pins,omitempty"`    // partition → pin id of the consumer pinned to it
}

// Timing of membership: a worker writes its entry every Heartbeat; the bucket forgets
// an entry TTL after its last write, and tells watchers so.
type Timing struct {
	Heartbeat time.Duration
	TTL       time.Duration
}

// Validate reports a timing under which members would expire between heartbeats.
func (t Timing) Validate() error {
	if t.Heartbeat <= 0 || t.TTL <= t.Heartbeat {
		return fmt.Errorf("worker group: heartbeat %v must be > 0 and below the entry TTL %v", t.Heartbeat, t.TTL)
	}
	return nil
}

// DefaultTiming notices a worker that died within 4 s.
var DefaultTiming = Timing{Heartbeat: time.Second, TTL: 4 * time.Second}

// OpenBucket creates or updates the membership bucket. Its entries expire TTL after
// their last write and leave a marker, so that every watcher sees a dead worker go.
func OpenBucket(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, t Timing) (jetstream.KeyValue, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if bucket == "" || replicas < 0 {
		return nil, errors.New("worker group: a bucket name and replicas ≥ 0 are required")
	}
	cfg := jetstream.KeyValueConfig{
		Bucket:         bucket,
		Description:    "liverelay: live workers and the partitions they hold",
		History:        1,
		TTL:            t.TTL,
		LimitMarkerTTL: t.TTL,
		Storage:        jetstream.FileStorage,
		Replicas:       replicas,
	}
	return broker.EnsureKeyValue(ctx, js, cfg)
}

// Membership keeps this worker's entry alive and follows everyone else's.
type Membership struct {
	kv     jetstream.KeyValue
	timing Timing
	log    *zap.Logger

	mu      sync.Mutex
	self    Member
	members map[string]Member    // by ID, self included
	seen    map[string]time.Time // local time of each member's last write
	left    bool
	changes chan struct{}
}

// NewMembership returns the membership of self; Run makes it real.
func NewMembership(kv jetstream.KeyValue, self Member, t Timing, log *zap.Logger) *Membership {
	return &Membership{
		kv: kv, timing: t, log: log, self: self,
		members: map[string]Member{self.ID: self},
		seen:    map[string]time.Time{},
		changes: make(chan struct{}, 1),
	}
}

// Changes signals, coalesced, that the set of live members changed.
func (m *Membership) Changes() <-chan struct{} { return m.changes }

// Alive returns the ids of the live members, self included while it has not left.
func (m *Membership) Alive() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := slices.Collect(maps.Keys(m.members))
	slices.Sort(ids)
	return ids
}

// Members returns the live members.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Collect(maps.Values(m.members))
}

// SetHolding publishes, with the next heartbeat, which partitions this worker pulls
// and which of them are pinned to it.
func (m *Membership) SetHolding(pulling []int, pins map[int]string) {
	m.mu.Lock()
	m.self.Pulling = slices.Clone(pulling)
	m.self.Pins = maps.Clone(pins)
	m.mu.Unlock()
}

// Join writes this worker's entry once and reads every member's, so that the first
// assignment already counts the workers that run.
func (m *Membership) Join(ctx context.Context) error {
	if err := m.beat(ctx); err != nil {
		return fmt.Errorf("join the worker group: %w", err)
	}
	keys, err := m.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list the worker group: %w", err)
	}
	for k := range keys.Keys() {
		e, err := m.kv.Get(ctx, k)
		if err != nil {
			continue // expired meanwhile
		}
		m.apply(e)
	}
	return nil
}

// Run keeps the entry alive and follows the others until ctx is cancelled. Call
// Leave before cancelling it to let the others take over at once.
func (m *Membership) Run(ctx context.Context) error {
	w, err := m.kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("watch the worker group: %w", err)
	}
	defer func() { _ = w.Stop() }()
	updates := w.Updates()
	beat := time.NewTicker(m.timing.Heartbeat)
	defer beat.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-updates:
			if !ok {
				// The watch ended (its consumer was lost): heartbeats go on, and
				// the watch is made again at the next beat; expiry covers the gap.
				m.log.Warn("worker group watch ended; watching again")
				updates = nil
				continue
			}
			if e != nil {
				m.apply(e)
			}
		case <-beat.C:
			if updates == nil {
				if nw, err := m.kv.WatchAll(ctx, jetstream.UpdatesOnly()); err == nil {
					_ = w.Stop()
					w, updates = nw, nw.Updates()
				}
			}
			if m.hasLeft() {
				continue
			}
			bctx, cancel := context.WithTimeout(ctx, m.timing.Heartbeat)
			err := m.beat(bctx)
			cancel()
			switch {
			case err != nil && !failing:
				failing = true
				m.log.Warn("worker group heartbeat failed; the others will take this worker's partitions if it lasts", zap.Error(err))
			case err == nil && failing:
				failing = false
				m.log.Info("worker group heartbeat works again")
			}
			if m.hasStale() {
				m.expire(ctx, m.ownWrite(ctx))
			}
		}
	}
}

// Leave deletes this worker's entry, so that the others reassign its partitions now
// rather than when the entry expires.
func (m *Membership) Leave(ctx context.Context) {
	m.mu.Lock()
	m.left = true
	id := m.self.ID
	m.mu.Unlock()
	if err := m.kv.Delete(ctx, id); err != nil {
		m.log.Warn("leave the worker group; the others notice when the entry expires", zap.Error(err))
	}
}

func (m *Membership) hasLeft() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.left
}

func (m *Membership) beat(ctx context.Context) error {
	m.mu.Lock()
	b, err := json.Marshal(m.self)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = m.kv.Put(ctx, m.self.ID, b)
	return err
}

// ownWrite returns when the server stored this worker's entry last, or zero.
func (m *Membership) ownWrite(ctx context.Context) time.Time {
	gctx, cancel := context.WithTimeout(ctx, m.timing.Heartbeat)
	defer cancel()
	e, err := m.kv.Get(gctx, m.self.ID)
	if err != nil {
		return time.Time{}
	}
	return e.Created()
}

// apply takes one entry or marker of the bucket.
func (m *Membership) apply(e jetstream.KeyValueEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := e.Key()
	_, had := m.members[id]
	if id == m.self.ID {
		return // self counts while it runs, whatever the bucket says
	}
	switch e.Operation() {
	case jetstream.KeyValuePut:
		var mem Member
		if err := json.Unmarshal(e.Value(), &mem); err != nil || mem.ID != id {
			m.log.Warn("ignoring a worker group entry that is not a member", zap.String("key", id))
			return
		}
		m.members[id] = mem
		m.seen[id] = time.Now()
		if !had {
			m.log.Info("worker joined", zap.String("worker", mem.Name), zap.String("id", id))
			m.signal()
		}
	default: // deleted (left) or purged (expired)
		if had {
			delete(m.members, id)
			delete(m.seen, id)
			m.log.Info("worker left", zap.String("id", id), zap.String("how", e.Operation().String()))
			m.signal()
		}
	}
}

// expire drops members not heard of for TTL, in case a marker was missed (a watch
// that reconnected, a server restart). The watch itself may be what stalled (its node
// went away): before dropping a member, read its entry, and keep it if the server
// stored it within TTL of this worker's own last write (both times are the server's).
func (m *Membership) expire(ctx context.Context, own time.Time) {
	m.mu.Lock()
	var stale []string
	for id, at := range m.seen {
		if time.Since(at) > m.timing.TTL {
			stale = append(stale, id)
		}
	}
	m.mu.Unlock()
	for _, id := range stale {
		if !own.IsZero() {
			gctx, cancel := context.WithTimeout(ctx, m.timing.Heartbeat)
			e, err := m.kv.Get(gctx, id)
			cancel()
			if err == nil && own.Sub(e.Created()) < m.timing.TTL {
				m.apply(e) // alive: the watch missed its writes
				m.mu.Lock()
				m.seen[id] = time.Now()
				m.mu.Unlock()
				continue
			}
		}
		m.mu.Lock()
		if at, ok := m.seen[id]; ok && time.Since(at) > m.timing.TTL {
			m.log.Info("worker expired", zap.String("worker", m.members[id].Name), zap.String("id", id))
			delete(m.members, id)
			delete(m.seen, id)
			m.signal()
		}
		m.mu.Unlock()
	}
}

// hasStale reports whether a member was not heard of for TTL.
func (m *Membership) hasStale() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, at := range m.seen {
		if time.Since(at) > m.timing.TTL {
			return true
		}
	}
	return false
}

func (m *Membership) signal() {
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

// List reads the live members from the bucket, for `worker status`. Entries that are
// not a member (bad JSON, an id other than the key) are left out, as the workers
// ignore them.
func List(ctx context.Context, kv jetstream.KeyValue) ([]Member, error) {
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []Member
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			continue // expired or left meanwhile
		case err != nil:
			return nil, fmt.Errorf("read worker %q: %w", k, err)
		}
		var mem Member
		if json.Unmarshal(e.Value(), &mem) == nil && mem.ID == k {
			out = append(out, mem)
		}
	}
	// The key listing ends early, without an error, when ctx does.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Member) int {
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out, nil
}
