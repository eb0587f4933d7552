package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/liverelay/liverelay/internal/event"
)

// ErrNotFound is returned by Reader.Get for a sequence that holds no letter: never
// written, replayed, or deleted.
var ErrNotFound = errors.New("no such dead letter")

// Filter selects letters. The zero Filter selects every letter.
type Filter struct {
	Channel string    // only letters of this channel (by their subject)
	Reason  Reason    // only letters with this Live-Dlq-Reason
	Since   time.Time // only letters stored at or after Since
	Until   time.Time // only letters stored at or before Until
	Limit   int       // at most this many letters; 0 is no limit
}

// Match reports whether e passes the filter's reason and time bounds. The channel is
// matched by subject when reading, and Limit is applied by the reader.
func (f Filter) Match(e Entry) bool {
	switch {
	case f.Reason != "" && e.Reason != f.Reason:
		return false
	case !f.Since.IsZero() && e.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && e.Time.After(f.Until):
		return false
	}
	return true
}

// Entry is one stored letter: its place in the stream and the letter read back from
// its subject, headers and body.
type Entry struct {
	Seq     uint64    // sequence in the dead-letter stream
	Subject string    // stored subject, <DLQ prefix>.<token>
	Time    time.Time // when the stream stored it
	Header  nats.Header
	Letter
	// Chunks are the sequences of the messages a letter too big for one message is
	// stored in, first to last, and ChunkCount how many it was written in; both are
	// zero for a letter in one message. Fewer Chunks than ChunkCount: some are gone.
	Chunks     []uint64
	ChunkCount int
}

// Incomplete reports whether chunks of the letter are missing: its body is not whole.
func (e Entry) Incomplete() bool { return len(e.Chunks) < e.ChunkCount }

// Seqs are the dead-letter stream sequences that hold the letter.
func (e Entry) Seqs() []uint64 {
	if len(e.Chunks) > 0 {
		return e.Chunks
	}
	return []uint64{e.Seq}
}

// Reader reads letters from the dead-letter stream. It holds no state on the server
// between reads: each read uses its own ephemeral ordered consumer, so it never
// disturbs the workers or another reader.
type Reader struct {
	js     jetstream.JetStream
	stream string
	prefix string
}

// NewReader returns a reader of stream, whose letters are stored under prefix (such as
// "live.dlq").
func NewReader(js jetstream.JetStream, stream, prefix string) *Reader {
	return &Reader{js: js, stream: stream, prefix: prefix}
}

// Stream is the name of the dead-letter stream.
func (r *Reader) Stream() string { return r.stream }

// idleWait is how long a read waits for the next letter before asking the server
// whether any is left to deliver.
const idleWait = 500 * time.Millisecond

// Each calls fn for every letter that matches f, in stream order, up to f.Limit. It
// reads the letters stored when it starts and stops at the stream's last sequence of
// that moment: letters written meanwhile are left for the next read. An error from fn
// stops the read and is returned as it is.
func (r *Reader) Each(ctx context.Context, f Filter, fn func(Entry) error) (err error) {
	s, err := r.js.Stream(ctx, r.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("dead-letter stream %s does not exist (has a worker run against this NATS server? is LIVE_DLQ_STREAM right?): %w", r.stream, err)
	}
	if err != nil {
		return fmt.Errorf("look up dead-letter stream %s: %w", r.stream, err)
	}
	state := s.CachedInfo().State
	if state.Msgs == 0 || (!f.Until.IsZero() && f.Until.Before(state.FirstTime)) {
		return nil
	}
	last := state.LastSeq

	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
		MaxResetAttempts:  5,
		NamePrefix:        "liverelay_dlq_read_" + nuid.Next(),
	}
	if f.Channel != "" {
		cfg.FilterSubjects = []string{r.prefix + "." + event.Token(f.Channel)}
	}
	if !f.Since.IsZero() {
		since := f.Since
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	oc, err := r.js.OrderedConsumer(ctx, r.stream, cfg)
	if err != nil {
		return fmt.Errorf("read dead-letter stream %s: %w", r.stream, err)
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		return fmt.Errorf("read dead-letter stream %s: %w", r.stream, err)
	}
	defer r.stop(ctx, it, oc)

	var got cursor
	matched := 0
	emit := func(e Entry) error {
		if f.Limit > 0 && matched >= f.Limit || !f.Match(e) {
			return nil
		}
		matched++
		return fn(e)
	}
	chunks := newJoiner()
	defer func() {
		// Letters whose chunks did not all come: shown as they are, never dropped.
		if err == nil {
			for _, e := range chunks.rest() {
				if err = emit(e); err != nil {
					return
				}
			}
		}
	}()
	if done, err := got.drained(ctx, oc); err != nil {
		return fmt.Errorf("read dead-letter stream %s: %w", r.stream, err)
	} else if done {
		return nil // nothing matches: no need to wait
	}
	for {
		if f.Limit > 0 && matched >= f.Limit {
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, idleWait)
		msg, err := it.Next(jetstream.NextContext(wctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("read dead-letter stream %s: %w", r.stream, context.Cause(ctx))
			}
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
				return fmt.Errorf("read dead-letter stream %s: %w", r.stream, err)
			}
			done, err := got.drained(ctx, oc)
			if err != nil {
				return fmt.Errorf("read dead-letter stream %s: %w", r.stream, err)
			}
			if done {
				return nil
			}
			continue
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read dead-letter stream %s: %w", r.stream, err)
		}
		if meta.Sequence.Stream > last {
			return nil // written after the read began
		}
		got = cursor{consumer: meta.Consumer, delivered: meta.Sequence.Consumer}
		e := r.entry(meta.Sequence.Stream, msg.Subject(), meta.Timestamp, msg.Headers(), msg.Data())
		if whole, ok := chunks.add(e); ok {
			if err := emit(whole); err != nil {
				return err
			}
		}
		if meta.Sequence.Stream == last || meta.NumPending == 0 {
			return nil
		}
	}
}

// List returns the letters that match f, in stream order.
func (r *Reader) List(ctx context.Context, f Filter) ([]Entry, error) {
	var out []Entry
	err := r.Each(ctx, f, func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// Get returns the letter stored at seq, or an error wrapping ErrNotFound.
func (r *Reader) Get(ctx context.Context, seq uint64) (Entry, error) {
	s, err := r.js.Stream(ctx, r.stream)
	if err != nil {
		return Entry{}, fmt.Errorf("look up dead-letter stream %s: %w", r.stream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Entry{}, fmt.Errorf("letter %d of %s (replayed or deleted?): %w", seq, r.stream, ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("read letter %d of %s: %w", seq, r.stream, err)
	}
	e := r.entry(m.Sequence, m.Subject, m.Time, m.Header, m.Data)
	if e.ChunkCount == 0 {
		return e, nil
	}
	return r.join(ctx, s, e)
}

// stop ends a read and removes its consumer from the server at once, instead of
// leaving it for the inactivity threshold.
func (r *Reader) stop(ctx context.Context, it jetstream.MessagesContext, oc jetstream.Consumer) {
	it.Stop()
	info := oc.CachedInfo()
	if info == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = r.js.DeleteConsumer(dctx, r.stream, info.Name) // it expires by itself otherwise
}

// cursor is the last delivery a read received: which server-side consumer (the
// ordered consumer recreates it after a gap) and how many it had delivered.
type cursor struct {
	consumer  string
	delivered uint64
}

// drained reports whether the server has nothing left to deliver and nothing in
// flight: no matching message pending, and every delivery of the current consumer
// received.
func (c cursor) drained(ctx context.Context, oc jetstream.Consumer) (bool, error) {
	info, err := oc.Info(ctx)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false, nil // being recreated; ask again after the next wait
	}
	if err != nil {
		return false, fmt.Errorf("consumer info: %w", err)
	}
	if info.NumPending > 0 {
		return false, nil
	}
	if info.Delivered.Consumer == 0 {
		return true, nil
	}
	return info.Name == c.consumer && info.Delivered.Consumer <= c.delivered, nil
}

// entry reads a letter back from a stored message. Headers that do not parse are
// left zero; Header keeps them as they are.
func (r *Reader) entry(seq uint64, subject string, stored time.Time, h nats.Header, body []byte) Entry {
	token, ok := strings.CutPrefix(subject, r.prefix+".")
	if !ok {
		token = LastToken(subject)
	}
	e := Entry{Seq: seq, Subject: subject, Time: stored, Header: h}
	e.Token = token
	e.Body = body
	e.Reason = Reason(h.Get(HeaderReason))
	e.Detail = h.Get(HeaderDetail)
	e.Channel = h.Get(HeaderChannel)
	e.Provider = h.Get(HeaderProvider)
	e.Attempts, _ = strconv.Atoi(h.Get(HeaderAttempts))
	e.FirstFailure = parseTime(h.Get(HeaderFirstFailure))
	e.LastFailure = parseTime(h.Get(HeaderLastFailure))
	e.SourceSeqs, _ = ParseSeqs(h.Get(HeaderSourceSeqs))
	e.SourceSubject = h.Get(HeaderSourceSubject)
	e.Part = h.Get(HeaderPart)
	if _, n, ok := chunkOf(h); ok {
		e.ChunkCount = n
		e.Chunks = []uint64{seq}
	}
	return e
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
