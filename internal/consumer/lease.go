package consumer

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/liverelay/liverelay/internal/relay"
)

// lease tells whether this worker can trust that it still holds its pins.
//
// JetStream moves a pinned partition to another worker only after the pinned worker
// sent no pull request for the pinned TTL. A worker pulls at least every pull expiry
// while it runs and is connected, so the pins can only have moved if the process was
// paused (a long GC, SIGSTOP, an overloaded host) or cut off from NATS for longer
// than limit = pinned TTL - pull expiry - a margin. Past that, the worker is in doubt
// until it asked the server who holds each of its partitions.
type lease struct {
	limit time.Duration

	mu             sync.Mutex
	tick           time.Time // when the watchdog last ran
	disconnectedAt time.Time // zero while connected
	doubt          bool
}

var (
	errInDoubt    = errors.New("this worker was paused or cut off from NATS long enough to lose its pins; checking with the server")
	errRefused    = errors.New("the server refused this worker's pin; checking whether anyone else received messages of the partition")
	errNotHere    = fmt.Errorf("%w: it is not consumed here", relay.ErrPartitionGone)
	errPinChanged = fmt.Errorf("%w: its pin moved to another worker since the job's events came", relay.ErrPartitionGone)
)

func newLease(limit time.Duration, now time.Time) *lease {
	return &lease{limit: limit, tick: now}
}

// check reports why the pins cannot be trusted at now, or nil.
func (l *lease) check(now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.doubt || now.Sub(l.tick) > l.limit || !l.disconnectedAt.IsZero() && now.Sub(l.disconnectedAt) > l.limit {
		return errInDoubt
	}
	return nil
}

// watch is called by the watchdog every few hundred milliseconds with whether the
// connection is up; it reports whether the worker must verify its pins.
func (l *lease) watch(now time.Time, connected bool) (verify bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.tick) > l.limit {
		l.doubt = true // the process stood still: the server may have moved the pins
	}
	l.tick = now
	switch {
	case connected:
		l.disconnectedAt = time.Time{}
	case l.disconnectedAt.IsZero():
		l.disconnectedAt = now
	case now.Sub(l.disconnectedAt) > l.limit:
		l.doubt = true
	}
	return l.doubt && connected
}

// verified ends the doubt once every pin was checked with the server.
func (l *lease) verified() {
	l.mu.Lock()
	l.doubt = false
	l.mu.Unlock()
}
