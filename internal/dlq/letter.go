// Package dlq writes dead letters: events liverelay could not deliver, kept in the
// LIVE_DLQ stream with the reason in headers so that an operator can find, inspect and
// replay them.
package dlq

import (
	"strconv"
	"strings"
	"time"
)

// Headers of a dead letter.
const (
	HeaderReason        = "Live-Dlq-Reason"
	HeaderDetail        = "Live-Dlq-Detail"
	HeaderChannel       = "Live-Dlq-Channel"
	HeaderProvider      = "Live-Dlq-Provider"
	HeaderAttempts      = "Live-Dlq-Attempts"
	HeaderFirstFailure  = "Live-Dlq-First-Failure"
	HeaderLastFailure   = "Live-Dlq-Last-Failure"
	HeaderSourceSeqs    = "Live-Dlq-Source-Seqs"
	HeaderSourceSubject = "Live-Dlq-Source-Subject"
	// HeaderPart is "i/n" on the i-th of the n letters a letter too big for one
	// message was split into, by posts; each part is a letter of its own.
	HeaderPart = "Live-Dlq-Part"
	// HeaderChunk is "i/n" on the i-th of the n messages whose bodies, joined in
	// order, are the body of one letter too big for one message; HeaderLetter names
	// the letter on each of them.
	HeaderChunk  = "Live-Dlq-Chunk"
	HeaderLetter = "Live-Dlq-Letter"
)

// Letter is one dead letter.
type Letter struct {
	// Token is the channel's subject token; the letter goes to "<DLQ prefix>.<Token>".
	Token   string
	Channel string // empty when the event could not be decoded
	// Body is the original message for undecodable events; otherwise a version 1
	// event holding what was not delivered, so that replay can publish it again.
	Body          []byte
	Reason        Reason // one of Reasons
	Detail        string
	Provider      string
	Attempts      int
	FirstFailure  time.Time
	LastFailure   time.Time
	SourceSeqs    []uint64
	SourceSubject string
	// Splittable says Body is a version 1 event that may be stored as several letters,
	// split by posts, when it is too big for one message (a merged update).
	Splittable bool
	// Part is "i/n" for the i-th of the n letters a splittable letter was stored as.
	Part string
}

func formatSeqs(seqs []uint64) string {
	var b strings.Builder
	for i, s := range seqs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(s, 10))
	}
	return b.String()
}

// ParseSeqs reads a Live-Dlq-Source-Seqs header.
func ParseSeqs(s string) ([]uint64, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]uint64, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
