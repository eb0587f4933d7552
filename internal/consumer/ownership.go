package consumer

import (
	"sync"
	"time"
)

// Ownership is what this worker holds of the partitions: which it consumes, under
// which pin and epoch, and whether it can still trust its pins (the lease). The relay
// asks it, through Owns, before every publish; the consumer changes it as partitions
// come and go.
//
// It is a part of its own, built before both, because the relay and the consumer need
// each other: the consumer feeds the relay, and the relay must know what the consumer
// holds. With Ownership built first, the relay is given it (relay.Deps.Owner) and the
// consumer is given the relay and the same Ownership (Deps), each in its constructor;
// nothing is set after construction.
type Ownership struct {
	lease *lease

	// mu guards parts and the fields of each partition that its turn does not (see
	// partition).
	mu    sync.Mutex
	parts map[int]*partition
}

// NewOwnership returns the ownership of a consumer built with cfg: the pins are
// trusted while the worker was neither paused nor cut off from NATS for longer than
// cfg.PinnedTTL - cfg.PullExpiry - 1 s (see lease).
func NewOwnership(cfg Config) *Ownership {
	return &Ownership{lease: newLease(leaseLimit(cfg), time.Now()), parts: map[int]*partition{}}
}

// leaseLimit is how long the pins are trusted without a pull or a connection.
func leaseLimit(cfg Config) time.Duration {
	return max(cfg.PinnedTTL-cfg.PullExpiry-time.Second, time.Second)
}

// Owns tells the relay whether a job of partition p, received in epoch, may be
// published: the partition is consumed here in that epoch, and nothing suggests the
// server moved it.
func (o *Ownership) Owns(p int, epoch string) error {
	if err := o.lease.check(time.Now()); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	part := o.parts[p]
	switch {
	case part == nil:
		return errNotHere
	case part.epoch != epoch:
		return errPinChanged
	case part.refused:
		return errRefused
	}
	return nil
}
