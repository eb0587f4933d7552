package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/event"
)

// HeaderReplayOf is set on a re-published event: the dead-letter sequence it came from.
const HeaderReplayOf = "Live-Replay-Of"

// ErrReplayConfig wraps every error of ReplayConfig.Validate.
var ErrReplayConfig = errors.New("invalid replay configuration")

// ReplayConfig says where replayed letters go and how.
type ReplayConfig struct {
	// EventsStream is the stream that must store the re-published events (LIVE_EVENTS);
	// a publish stored by any other stream counts as failed and keeps the letter.
	EventsStream string
	// EventsPrefix is the subject prefix the CMS publishes to (live.events); a letter
	// goes back to <EventsPrefix>.<channel token>.
	EventsPrefix string
	// DryRun reports what would be replayed, and publishes and deletes nothing.
	DryRun bool
	// IncludeInvalid replays letters whose body is not a valid event too (they go back
	// to their dead-letter subject's token); by default they are skipped.
	IncludeInvalid bool
	// Timeout bounds each publish and each delete; 0 means 10s.
	Timeout time.Duration
}

// Validate reports what is missing.
func (c ReplayConfig) Validate() error {
	switch {
	case c.EventsStream == "":
		return fmt.Errorf("%w: the events stream is empty", ErrReplayConfig)
	case c.EventsPrefix == "":
		return fmt.Errorf("%w: the events subject prefix is empty", ErrReplayConfig)
	case c.Timeout < 0:
		return fmt.Errorf("%w: timeout %v is negative", ErrReplayConfig, c.Timeout)
	}
	return nil
}

// Action is what replay did with one letter.
type Action string

// Actions of a replay.
const (
	ActionReplayed    Action = "replayed"        // re-published, acked by JetStream, letter deleted
	ActionDuplicate   Action = "duplicate"       // JetStream had it already (an earlier or concurrent replay); letter deleted
	ActionSkipped     Action = "skipped-invalid" // the body is not a valid event; letter kept
	ActionFailed      Action = "failed"          // publish or delete failed; see Err
	ActionWouldReplay Action = "would-replay"    // dry run
)

// Outcome is what happened to one letter.
type Outcome struct {
	Entry  Entry
	Action Action
	// Subject is where the letter is (or would be) re-published.
	Subject string
	// EventSeq is the sequence of the re-published event in the events stream.
	EventSeq uint64
	// Err says why a letter was skipped or failed.
	Err error
}

// Summary counts the outcomes of a replay.
type Summary struct {
	Replayed       int
	Duplicates     int
	SkippedInvalid int
	Failed         int
	WouldReplay    int
}

// Replayer pushes dead letters back into the event stream, through the normal
// pipeline: they are merged, ordered and fenced like fresh events, so an old letter
// cannot roll a page back. Each letter is re-published with the Nats-Msg-Id
// "replay:<DLQ stream>:<seq>", so two replays of it within the event stream's
// duplicate window store it once, and it is deleted from the dead-letter stream only
// after JetStream acknowledged the re-publish.
type Replayer struct {
	js     jetstream.JetStream
	reader *Reader
	cfg    ReplayConfig
}

// NewReplayer returns a replayer of the letters r reads.
func NewReplayer(js jetstream.JetStream, r *Reader, cfg ReplayConfig) (*Replayer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Replayer{js: js, reader: r, cfg: cfg}, nil
}

// MsgID is the Nats-Msg-Id of the replay of letter seq of stream.
func MsgID(stream string, seq uint64) string {
	return "replay:" + stream + ":" + strconv.FormatUint(seq, 10)
}

// Replay replays the letters that match f, one at a time in stream order, calling
// progress (when not nil) after each. A failed letter does not stop the replay; an
// error is returned only when the letters could not be read, or ctx ended.
func (r *Replayer) Replay(ctx context.Context, f Filter, progress func(Outcome)) (Summary, error) {
	var sum Summary
	var dlq jetstream.Stream
	if !r.cfg.DryRun {
		s, err := r.js.Stream(ctx, r.reader.Stream())
		if err != nil {
			return sum, fmt.Errorf("look up dead-letter stream %s: %w", r.reader.Stream(), err)
		}
		dlq = s
	}
	err := r.reader.Each(ctx, f, func(e Entry) error {
		o := r.one(ctx, dlq, e)
		switch o.Action {
		case ActionReplayed:
			sum.Replayed++
		case ActionDuplicate:
			sum.Duplicates++
		case ActionSkipped:
			sum.SkippedInvalid++
		case ActionFailed:
			sum.Failed++
		case ActionWouldReplay:
			sum.WouldReplay++
		}
		if progress != nil {
			progress(o)
		}
		return ctx.Err()
	})
	return sum, err
}

// one replays one letter.
func (r *Replayer) one(ctx context.Context, dlq jetstream.Stream, e Entry) Outcome {
	o := Outcome{Entry: e}
	if e.Incomplete() {
		o.Action, o.Err = ActionFailed, fmt.Errorf("only %d of the letter's %d chunks are in %s; letter kept", len(e.Chunks), e.ChunkCount, r.reader.Stream())
		return o
	}
	token := e.Token
	ev, err := event.Decode(e.Body)
	switch {
	case err == nil:
		token = event.Token(ev.Channel)
	case !r.cfg.IncludeInvalid:
		o.Action, o.Err = ActionSkipped, err
		return o
	}
	o.Subject = r.cfg.EventsPrefix + "." + token
	if r.cfg.DryRun {
		o.Action = ActionWouldReplay
		return o
	}
	msg := &nats.Msg{Subject: o.Subject, Data: e.Body, Header: nats.Header{}}
	msg.Header.Set(nats.MsgIdHdr, MsgID(r.reader.Stream(), e.Seq))
	msg.Header.Set(HeaderReplayOf, strconv.FormatUint(e.Seq, 10))

	pctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	ack, err := r.js.PublishMsg(pctx, msg)
	cancel()
	if err != nil {
		o.Action, o.Err = ActionFailed, fmt.Errorf("re-publish to %s: %w", o.Subject, err)
		return o
	}
	if ack.Stream != r.cfg.EventsStream {
		o.Action, o.Err = ActionFailed, fmt.Errorf("re-publish to %s was stored by stream %s, not %s; letter kept", o.Subject, ack.Stream, r.cfg.EventsStream)
		return o
	}
	o.EventSeq = ack.Sequence
	o.Action = ActionReplayed
	if ack.Duplicate {
		o.Action = ActionDuplicate
	}
	if err := r.deleteAll(ctx, dlq, e.Seqs()); err != nil {
		o.Action, o.Err = ActionFailed, fmt.Errorf("re-published to %s (%s seq %d) but the letter stays in %s: %w", o.Subject, ack.Stream, ack.Sequence, r.reader.Stream(), err)
	}
	return o
}

// deleteAll removes every message of a letter, its first last: a letter whose first
// chunk is still there is still listed.
func (r *Replayer) deleteAll(ctx context.Context, dlq jetstream.Stream, seqs []uint64) error {
	for i := len(seqs) - 1; i >= 0; i-- {
		if err := r.delete(ctx, dlq, seqs[i]); err != nil {
			return err
		}
	}
	return nil
}

// delete removes letter seq; one already gone (a concurrent replay deleted it) is fine.
func (r *Replayer) delete(ctx context.Context, dlq jetstream.Stream, seq uint64) error {
	dctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	err := dlq.DeleteMsg(dctx, seq)
	if err == nil {
		return nil
	}
	if _, gerr := dlq.GetMsg(dctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return nil
	}
	return fmt.Errorf("delete letter %d: %w", seq, err)
}
