package worker

import "time"

// Timings of the worker's start and stop that are not settings: an operator never
// needs to tune them, only to know them (docs/architecture.md, "Fixed timings").
const (
	// setupTimeout bounds start-up's calls to JetStream: creating or updating the
	// streams, the consumers and the buckets, and joining the worker group. A server
	// that cannot answer them within it is unreachable or has no leader; the worker
	// exits 1, for its supervisor to start it again.
	setupTimeout = 30 * time.Second
	// connFlushTimeout bounds the last flush of the NATS connection at shutdown,
	// which makes sure the acks, sent without waiting, reached the server. Acks
	// it does not deliver are redelivered messages for the next owner.
	connFlushTimeout = 5 * time.Second
)

// Timing is how the fail-over and hand-over times follow from LIVE_ACK_WAIT.
type Timing struct {
	// PullExpiry is how long one pull request waits on the server; a worker renews
	// its pull at least this often, which keeps its pins.
	PullExpiry time.Duration
	// PinnedTTL is how long the server keeps a partition pinned to a worker that sent
	// no pull request. It exceeds AckWait + PullExpiry, so that when a dead worker's
	// pin runs out every message it held is already due for redelivery, and the next
	// owner receives those before anything newer.
	PinnedTTL time.Duration
	// Handover bounds the publishing of a partition being handed over; it ends before
	// the pin could run out by itself.
	Handover time.Duration
	// KeepAlive is how often the relay marks the messages it holds in progress: a
	// third of the ack wait, so that JetStream does not redeliver a message whose
	// publish is being retried even if one mark is late.
	KeepAlive time.Duration
	// Redelivery is how long after a partition came to this worker every message its
	// previous owner held unacked has been delivered again: the ack wait and a
	// margin. The fence's catch-up waits that long for an event that may still come.
	Redelivery time.Duration
}

// The constants of Timings.
const (
	pullExpiry = time.Second
	// pinnedMargin covers the server's redelivery timer firing a little late.
	pinnedMargin = 500 * time.Millisecond
	// handoverMargin is kept between the end of a hand-over and the earliest the pin
	// could run out by itself, beyond a pull expiry; minHandover is the least a
	// hand-over gets with a short ack wait.
	handoverMargin = 1500 * time.Millisecond
	minHandover    = time.Second
	// minKeepAlive keeps a short ack wait from marking messages in a busy loop.
	minKeepAlive = 100 * time.Millisecond
	// redeliveryMargin covers the server's redelivery timer and the delivery itself.
	redeliveryMargin = 2 * time.Second
)

// Timings derives the timings from the ack wait: with the default 5 s, a dead
// worker's partitions move after at most 6.5 s, a hand-over has 4 s to publish, held
// messages are marked in progress every 1.67 s, and the fence's catch-up waits up to
// 7 s for unacked messages to come again.
func Timings(ackWait time.Duration) Timing {
	pinned := ackWait + pullExpiry + pinnedMargin
	return Timing{
		PullExpiry: pullExpiry,
		PinnedTTL:  pinned,
		Handover:   max(pinned-pullExpiry-handoverMargin, minHandover),
		KeepAlive:  max(ackWait/3, minKeepAlive),
		Redelivery: ackWait + redeliveryMargin,
	}
}
