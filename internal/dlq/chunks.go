package dlq

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// chunkOf reads a Live-Dlq-Chunk header: the chunk's place i of n.
func chunkOf(h nats.Header) (i, n int, ok bool) {
	a, b, found := strings.Cut(h.Get(HeaderChunk), "/")
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || i < 1 || n < 1 || i > n {
		return 0, 0, false
	}
	return i, n, true
}

// joiner puts chunked letters together while a read goes through the stream in order.
// Chunks of one letter are written in order by one writer, on one subject; letters
// of other writers may come between them.
type joiner struct {
	open map[string]*Entry // by subject and letter id
}

func newJoiner() *joiner { return &joiner{open: map[string]*Entry{}} }

// add takes the next entry read; it returns a letter when one is whole (an entry in
// one message is whole at once).
func (j *joiner) add(e Entry) (Entry, bool) {
	i, n, ok := chunkOf(e.Header)
	if !ok {
		return e, true
	}
	key := e.Subject + "\x00" + e.Header.Get(HeaderLetter)
	cur := j.open[key]
	switch {
	case i == 1:
		e.Body = append([]byte(nil), e.Body...)
		if cur != nil {
			// The letter was written again (after a crash, past the duplicate window):
			// the earlier copy is shown as it is, incomplete.
			j.open[key+"\x00"+strconv.FormatUint(cur.Seq, 10)] = cur
		}
		cur = &e
		j.open[key] = cur
	case cur != nil && i == len(cur.Chunks)+1:
		cur.Body = append(cur.Body, e.Body...)
		cur.Chunks = append(cur.Chunks, e.Seq)
	default:
		return e, true // a chunk whose letter is not here to join: shown as it is
	}
	if len(cur.Chunks) < n {
		return Entry{}, false
	}
	delete(j.open, key)
	return *cur, true
}

// rest returns the letters still missing chunks, in stream order.
func (j *joiner) rest() []Entry {
	out := make([]Entry, 0, len(j.open))
	for _, e := range j.open {
		out = append(out, *e)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Seq < out[b].Seq })
	j.open = map[string]*Entry{}
	return out
}

// join reads the chunks that follow e, the first chunk of a letter, on its subject.
func (r *Reader) join(ctx context.Context, s jetstream.Stream, e Entry) (Entry, error) {
	i, n, _ := chunkOf(e.Header)
	if i != 1 {
		return e, fmt.Errorf("letter %d of %s is chunk %d of %d of letter %s: show its first chunk (dlq list names it)",
			e.Seq, r.stream, i, n, e.Header.Get(HeaderLetter))
	}
	id := e.Header.Get(HeaderLetter)
	e.Body = append([]byte(nil), e.Body...)
	next := e.Seq + 1
	for len(e.Chunks) < n {
		m, err := s.GetMsg(ctx, next, jetstream.WithGetMsgSubject(e.Subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return e, nil // incomplete: Entry.Incomplete says so
		}
		if err != nil {
			return e, fmt.Errorf("read chunks of letter %d of %s: %w", e.Seq, r.stream, err)
		}
		next = m.Sequence + 1
		ci, _, ok := chunkOf(m.Header)
		if !ok || m.Header.Get(HeaderLetter) != id {
			continue
		}
		if ci == 1 {
			return e, nil // the letter written again: this copy stops here
		}
		if ci == len(e.Chunks)+1 {
			e.Body = append(e.Body, m.Data...)
			e.Chunks = append(e.Chunks, m.Sequence)
		}
	}
	return e, nil
}
