package relay

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
	"github.com/liverelay/liverelay/internal/publish"
)

// job is one channel's merged update on its way out: published, or dead-lettered, and
// then its sources acked. A channel has at most one job at a time.
type job struct {
	ch      *channel
	update  *merge.Update
	sources []Input

	// Built by prepare: the messages to publish and the letters to write first.
	msgs    []publish.Message
	letters []letter
	// written holds the keys of the letters already stored, so that a retry that
	// prepares the job again does not write them twice.
	written map[string]bool
	// deadReason is set when the whole update goes to the dead-letter stream.
	deadReason dlq.Reason
	deadDetail string

	attempts  int // publish attempts that failed
	firstFail time.Time
	lastFail  time.Time
	lastErr   error
	solo      bool // publish this job in a call of its own

	// Set by the publisher.
	pubErr   error // the provider call failed
	fenceErr bool  // pubErr came from the revision fence or the owner check: the provider was not called
	gone     bool  // the owner check: the partition is another worker's; drop the job unacked
	unsure   bool  // the owner check: this worker is not sure it holds the partition; wait
	// deadline, when set, bounds the provider call: the job's partition is being
	// handed over and must not be published after the hand-over's end.
	deadline time.Time
	deadErr  error // a dead-letter write failed: nothing was published or acked
}

// letter is a dead letter with the key that tells whether it was written already.
type letter struct {
	dlq.Letter
	key string
}

// call is the unit of work of one publisher: the jobs of several channels whose
// messages share provider requests.
type call struct {
	jobs  []*job
	gated bool // the breaker let it out: its outcome tells how the provider is
	probe bool // the one call of the breaker's half-open state
}

func (j *job) seqs() []uint64 {
	out := make([]uint64, len(j.sources))
	for i, s := range j.sources {
		out[i] = s.Seq
	}
	return out
}

// prepare encodes the update for the provider: split to its message size, with posts
// that cannot fit set aside as dead letters, or the whole update dead-lettered when the
// provider refuses the channel or the update failed for good.
func (j *job) prepare(p Provider, provider string) {
	j.msgs, j.letters = nil, nil
	u := j.update
	if j.deadReason != "" {
		ev := u.Event()
		l := j.letter(event.Append(nil, ev), j.deadReason, j.deadDetail, provider)
		l.Splittable = true // too big for one message, it is stored split by posts
		j.letters = []letter{{Letter: l, key: "update"}}
		return
	}
	if err := p.CheckChannel(u.Channel); err != nil {
		j.deadReason, j.deadDetail = dlq.ReasonChannelRejected, err.Error()
		j.prepare(p, provider)
		return
	}
	if u.Empty() {
		return
	}
	max := p.Limits().MaxData
	parts, tooBig := u.Split(max)
	for _, r := range tooBig {
		key := postKey(r)
		if j.written[key] {
			continue
		}
		ev := event.Event{Channel: u.Channel, Renders: []event.Render{r}, Revision: u.Revision(r.ID), EmittedAt: u.OldestEmit()}
		detail := fmt.Sprintf("post %s is %d bytes encoded; %s takes at most %d bytes per message", r.ID, event.RenderSize(r), provider, max)
		j.letters = append(j.letters, letter{Letter: j.letter(event.Append(nil, ev), dlq.ReasonPostTooLarge, detail, provider), key: key})
	}
	base := messageBase(j.sources, parts)
	for i, data := range parts {
		j.msgs = append(j.msgs, publish.Message{Channel: u.Channel, Data: data, ID: messageID(base, i)})
	}
}

func (j *job) letter(body []byte, reason dlq.Reason, detail, provider string) dlq.Letter {
	return dlq.Letter{
		Token:         j.ch.token,
		Channel:       j.update.Channel,
		Body:          body,
		Reason:        reason,
		Detail:        detail,
		Provider:      provider,
		Attempts:      j.attempts,
		FirstFailure:  j.firstFail,
		LastFailure:   j.lastFail,
		SourceSeqs:    j.seqs(),
		SourceSubject: j.sources[0].Subject,
	}
}

// postKey identifies one version of one post.
func postKey(r event.Render) string {
	h := fnv.New64a()
	h.Write([]byte(r.Content))
	return r.ID + "\x00" + strconv.FormatUint(h.Sum64(), 36)
}

// messageBase derives the base of an update's message ids from the source sequences
// and the content, so that the same sources with the same content give the same ids on
// a retry, by this worker or another (a provider drops the repeat), while content that
// changed between attempts (the fence dropped a post) gets new ids and is not dropped
// as a repeat.
func messageBase(sources []Input, parts [][]byte) string {
	h := fnv.New64a()
	var b [8]byte
	for _, s := range sources {
		for i := range b {
			b[i] = byte(s.Seq >> (8 * i))
		}
		h.Write(b[:])
	}
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return strconv.FormatUint(sources[0].Seq, 10) + "-" + strconv.FormatUint(h.Sum64(), 36)
}

// messageID is the id of part i of an update: <base>-<i>, a key of its own. Providers
// publish every part on its own, and one that drops repeats (Ably) must take each part
// as a new message: ids that shared a key (Ably reads <base>:<i> as the key <base>)
// would have every part after the first dropped as a repeat of it, or refused.
func messageID(base string, part int) string {
	return base + "-" + strconv.Itoa(part)
}

// firstSeq is the stream sequence of the job's oldest source message.
func (j *job) firstSeq() uint64 {
	var first uint64
	for _, s := range j.sources {
		if first == 0 || s.Seq < first {
			first = s.Seq
		}
	}
	return first
}
