package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/event"
)

// conflictAttempts bounds how often one event is stamped again after another writer
// (a worker serving the same channel) stored an event of its channel first.
const conflictAttempts = 20

// ErrUnavailable wraps every failure to store an event: NATS is unreachable, the
// stream did not answer, or the channel was too busy. The request is answered 503.
var ErrUnavailable = errors.New("JetStream cannot take the event")

// ErrTooLarge is an event larger than the NATS server takes in one message.
var ErrTooLarge = errors.New("event larger than the NATS server's max payload")

// headroom is what a stored event may add to the encoded update: its revision, and
// the message's subject and headers.
const headroom = 512

// Journal stores ingested events in the event stream, in order, each acknowledged by
// JetStream before the next is sent.
//
// An event without a revision gets one from the channel's own history: the revision
// of the last event stored for the channel plus one, or the current time in
// microseconds when that is larger, published on the condition that the channel's
// last stored message is still the one it was computed from
// (Nats-Expected-Last-Subject-Sequence). A writer that loses the race reads again and
// stamps again. So revisions grow in stream order per channel, whichever worker
// stamps them and whatever the hosts' clocks say, and the fence never takes a newer
// edit for an older one.
type Journal struct {
	js     jetstream.JetStream
	stream jetstream.Stream // the event stream, where the last event of a channel is looked up
	top    broker.Topology  // subjects: events are published to <prefix>.<token>, stored under <prefix>.<partition>.<token>
	now    func() time.Time

	// Requests of one channel on this worker take turns, so that they do not race
	// each other for the stream's condition; each shard also remembers the last
	// event this worker stored per channel, so that a channel's next event needs no
	// look-up. A remembered event that is no longer the last (another worker stored
	// one since) only costs a refused publish and a look-up.
	seed   maphash.Seed
	shards [512]shard
}

// shard is the turn and memory of the channels that hash to it.
type shard struct {
	mu   sync.Mutex
	last map[string]stored // by channel; cleared when it reaches maxRemembered
}

// stored is what a worker remembers of a channel: the stream sequence of its last
// event, when known, and the newest revision it stamped or read for it. The revision
// outlives a lost race: a look-up may find an older revision last in the stream (a
// replayed dead letter), which must not lower the next stamp.
type stored struct {
	seq      uint64
	seqKnown bool
	revision int64
}

// remember keeps what the worker knows of channel, forgetting every channel of the
// shard when it holds maxRemembered.
func (sh *shard) remember(channel string, s stored) {
	if _, ok := sh.last[channel]; !ok && len(sh.last) >= maxRemembered {
		sh.last = nil
	}
	if sh.last == nil {
		sh.last = make(map[string]stored)
	}
	sh.last[channel] = s
}

// maxRemembered bounds the channels one shard remembers.
const maxRemembered = 128

// NewJournal stores events in the stream top names, which must exist.
func NewJournal(js jetstream.JetStream, stream jetstream.Stream, top broker.Topology) *Journal {
	return &Journal{js: js, stream: stream, top: top, now: time.Now, seed: maphash.MakeSeed()}
}

// Append stores evs in order; it returns when JetStream acknowledged all, or at the
// first that it could not store (an error wrapping ErrUnavailable), leaving those
// before it stored. An event too large for NATS (ErrTooLarge) fails the call before
// anything is stored.
func (j *Journal) Append(ctx context.Context, evs []event.Event) error {
	nc := j.js.Conn()
	if st := nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w: not connected to NATS (%s)", ErrUnavailable, st)
	}
	for i, ev := range evs {
		if n := len(event.Append(nil, ev)) + headroom; int64(n) > nc.MaxPayload() {
			return fmt.Errorf("%w: event %d of %d is %d bytes stored, the server takes %d", ErrTooLarge, i+1, len(evs), n, nc.MaxPayload())
		}
	}
	for i, ev := range evs {
		if err := j.append(ctx, ev); err != nil {
			return fmt.Errorf("%w: event %d of %d, channel %q: %w", ErrUnavailable, i+1, len(evs), ev.Channel, err)
		}
	}
	return nil
}

func (j *Journal) append(ctx context.Context, ev event.Event) error {
	token := event.Token(ev.Channel)
	subject := j.top.EventSubject(token)
	sh := &j.shards[maphash.String(j.seed, ev.Channel)%uint64(len(j.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ev.Revision != 0 {
		// The CMS keeps the page's clock: store the event as it came.
		sh.remember(ev.Channel, stored{revision: max(sh.last[ev.Channel].revision, ev.Revision)})
		body := event.Append(nil, ev)
		sum := sha256.Sum256(body)
		msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, "ingest:"+ev.Channel+":"+strconv.FormatInt(ev.Revision, 10)+":"+hex.EncodeToString(sum[:8]))
		_, err := j.js.PublishMsg(ctx, msg)
		return err
	}

	var err error
	for attempt := range conflictAttempts {
		if attempt > 0 {
			// Another writer stored an event of the channel first: let it finish its
			// turn before reading again.
			wait := time.NewTimer(time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond))))
			select {
			case <-ctx.Done():
				wait.Stop()
				return ctx.Err()
			case <-wait.C:
			}
		}
		last := sh.last[ev.Channel]
		if !last.seqKnown {
			read, err := j.last(ctx, token)
			if err != nil {
				return err
			}
			last = stored{seq: read.seq, seqKnown: true, revision: max(read.revision, last.revision)}
		}
		ev.Revision = max(j.now().UnixMicro(), last.revision+1)
		msg := &nats.Msg{Subject: subject, Data: event.Append(nil, ev), Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, "ingest:"+ev.Channel+":"+strconv.FormatInt(ev.Revision, 10))
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last.seq, 10))
		var ack *jetstream.PubAck
		ack, err = j.js.PublishMsg(ctx, msg)
		switch {
		case err == nil && ack.Duplicate:
			// An earlier event of the channel has this id (this revision) within the
			// de-duplication window, so this one was not stored: stamp above it.
			sh.remember(ev.Channel, stored{revision: ev.Revision})
		case err == nil:
			sh.remember(ev.Channel, stored{seq: ack.Sequence, seqKnown: true, revision: ev.Revision})
			return nil
		case wrongLastSequence(err):
			sh.remember(ev.Channel, stored{revision: last.revision})
		default:
			// The event may have been stored with its answer lost: look the channel
			// up next time, keeping the revision it may have been stored with.
			sh.remember(ev.Channel, stored{revision: ev.Revision})
			return err
		}
	}
	return fmt.Errorf("channel busy: %d attempts lost to other writers: %w", conflictAttempts, err)
}

// last returns the stream sequence and the highest revision of the channel's last
// stored event; zero when it has none.
func (j *Journal) last(ctx context.Context, token string) (stored, error) {
	msg, err := j.stream.GetLastMsgForSubject(ctx, j.top.StoredSubject(token))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return stored{seqKnown: true}, nil
	case err != nil:
		return stored{}, fmt.Errorf("read the channel's last event: %w", err)
	}
	// An invalid event (dead-lettered by the consumer) has no revision to respect.
	ev, _ := event.Decode(msg.Data)
	revision := ev.Revision
	for _, r := range ev.PostRevisions {
		revision = max(revision, r)
	}
	return stored{seq: msg.Sequence, seqKnown: true, revision: revision}, nil
}

func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
