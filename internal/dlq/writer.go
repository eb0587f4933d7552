package dlq

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Writer publishes letters to the dead-letter stream and waits for JetStream to store
// them: a caller acks the source messages only after Write returned nil.
type Writer struct {
	js      jetstream.JetStream
	prefix  string
	written *prometheus.CounterVec
	failed  prometheus.Counter
}

// NewWriter returns a writer publishing under prefix (such as "live.dlq"). It counts
// letters written, by reason, and failed writes, on reg: every letter of the worker
// (invalid events, publish failures, messages JetStream gave up on) passes here.
func NewWriter(js jetstream.JetStream, prefix string, reg prometheus.Registerer) *Writer {
	w := &Writer{js: js, prefix: prefix}
	w.written = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liverelay_dead_letters_total",
		Help: "Letters written to the dead-letter stream, by reason."}, []string{"reason"})
	w.failed = prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_dead_letter_write_errors_total",
		Help: "Dead-letter writes that failed; their messages stay unacked and are tried again."})
	for _, r := range Reasons() {
		w.written.WithLabelValues(string(r.Reason)) // every reason's series from the start, at 0
	}
	reg.MustRegister(w.written, w.failed)
	return w
}

// Write stores l. Its Nats-Msg-Id is derived from the source sequences, reason and
// body, so a write repeated after a crash is dropped by the stream's duplicate window.
//
// A letter too big for one message of the server (its max payload, headers included)
// is split by posts when it is splittable, each part a letter of its own; what still
// does not fit — one huge post, an invalid event's body — is stored in chunks that
// the reader joins again. No letter is too big to be written.
func (w *Writer) Write(ctx context.Context, l Letter) error {
	if err := w.write(ctx, l, w.maxPayload()); err != nil {
		w.failed.Inc()
		return err
	}
	// The worker writes only the reasons of Reasons, but a label must be valid UTF-8
	// whatever reason a letter carries: a metric never stops a write that succeeded.
	w.written.WithLabelValues(strings.ToValidUTF8(string(l.Reason), "\uFFFD")).Inc()
	return nil
}

// maxPayload is the largest message the connected server takes; 0 when unknown.
func (w *Writer) maxPayload() int {
	if nc := w.js.Conn(); nc != nil {
		return int(nc.MaxPayload())
	}
	return 0
}

func (w *Writer) write(ctx context.Context, l Letter, max int) error {
	msg := w.message(l)
	if max <= 0 || messageSize(msg) <= max {
		return w.publish(ctx, msg, l)
	}
	if l.Splittable {
		if parts := splitLetter(l, max-headerSize(w.message(withPart(l, 1<<20, 1<<20)).Header)); len(parts) > 1 {
			for _, p := range parts {
				if err := w.write(ctx, p, max); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return w.writeChunks(ctx, l, max)
}

// writeChunks stores l's body in as many messages as it takes, each with the letter's
// headers and its place ("i/n"), in order.
func (w *Writer) writeChunks(ctx context.Context, l Letter, max int) error {
	id := letterID(l)
	widest := w.message(l)
	widest.Header.Set(HeaderChunk, "9999999/9999999")
	widest.Header.Set(HeaderLetter, id)
	widest.Header.Set(nats.MsgIdHdr, id+"/9999999")
	room := max - headerSize(widest.Header)
	if room < minChunk {
		return fmt.Errorf("write dead letter (%s): its headers take %d of the server's %d-byte max payload", l.Reason, headerSize(widest.Header), max)
	}
	n := (len(l.Body) + room - 1) / room
	for i := 0; i < n; i++ {
		msg := w.message(l)
		msg.Data = l.Body[i*room : min((i+1)*room, len(l.Body))]
		msg.Header.Set(HeaderChunk, strconv.Itoa(i+1)+"/"+strconv.Itoa(n))
		msg.Header.Set(HeaderLetter, id)
		msg.Header.Set(nats.MsgIdHdr, id+"/"+strconv.Itoa(i+1))
		if err := w.publish(ctx, msg, l); err != nil {
			return fmt.Errorf("chunk %d of %d: %w", i+1, n, err)
		}
	}
	return nil
}

// minChunk is the least body a chunk must carry beside its headers.
const minChunk = 1024

// maxDetail bounds the Live-Dlq-Detail header: a provider's error text can be long.
const maxDetail = 2048

// message builds the one message that holds l.
func (w *Writer) message(l Letter) *nats.Msg {
	token := l.Token
	if token == "" {
		token = "_unknown"
	}
	msg := &nats.Msg{Subject: w.prefix + "." + token, Data: l.Body, Header: nats.Header{}}
	set := func(k, v string) {
		if v != "" {
			msg.Header.Set(k, v)
		}
	}
	detail := l.Detail
	if len(detail) > maxDetail {
		detail = detail[:maxDetail] + "…"
	}
	set(HeaderReason, string(l.Reason))
	set(HeaderDetail, detail)
	set(HeaderChannel, l.Channel)
	set(HeaderProvider, l.Provider)
	if l.Attempts > 0 {
		set(HeaderAttempts, strconv.Itoa(l.Attempts))
	}
	if !l.FirstFailure.IsZero() {
		set(HeaderFirstFailure, l.FirstFailure.UTC().Format(time.RFC3339Nano))
	}
	if !l.LastFailure.IsZero() {
		set(HeaderLastFailure, l.LastFailure.UTC().Format(time.RFC3339Nano))
	}
	set(HeaderSourceSeqs, formatSeqs(l.SourceSeqs))
	set(HeaderSourceSubject, l.SourceSubject)
	set(HeaderPart, l.Part)
	msg.Header.Set(nats.MsgIdHdr, letterID(l))
	return msg
}

func (w *Writer) publish(ctx context.Context, msg *nats.Msg, l Letter) error {
	if _, err := w.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("write dead letter (%s) to %s: %w", l.Reason, msg.Subject, err)
	}
	return nil
}

// headerSize is how many bytes h takes on the wire, as the NATS client counts them
// against the max payload.
func headerSize(h nats.Header) int {
	if len(h) == 0 {
		return 0
	}
	n := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + len(": \r\n")
		}
	}
	return n
}

func messageSize(m *nats.Msg) int { return headerSize(m.Header) + len(m.Data) }

func letterID(l Letter) string {
	h := fnv.New64a()
	h.Write([]byte(formatSeqs(l.SourceSeqs)))
	h.Write([]byte{0})
	h.Write([]byte(l.Reason))
	h.Write([]byte{0})
	h.Write(l.Body)
	first := uint64(0)
	if len(l.SourceSeqs) > 0 {
		first = l.SourceSeqs[0]
	}
	return "dlq:" + strconv.FormatUint(first, 10) + ":" + strconv.FormatUint(h.Sum64(), 16)
}
