package dlq

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
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
	written *prometheus.CounterVec // nil until Instrument
	failed  prometheus.Counter
}

// Instrument counts letters written, by reason, and failed writes, on reg: every
// letter of the worker (invalid events, publish failures, messages JetStream gave up
// on) passes here.
func (w *Writer) Instrument(reg prometheus.Registerer) {
	w.written = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liverelay_dead_letters_total",
		Help: "Letters written to the dead-letter stream, by reason."}, []string{"reason"})
	w.failed = prometheus.NewCounter(prometheus.CounterOpts{Name: "liverelay_dead_letter_write_errors_total",
		Help: "Dead-letter writes that failed; their messages stay unacked and are tried again."})
	reg.MustRegister(w.written, w.failed)
}

// NewWriter returns a writer publishing under prefix (such as "live.dlq").
func NewWriter(js jetstream.JetStream, prefix string) *Writer {
	return &Writer{js: js, prefix: prefix}
}

// Write stores l. Its Nats-Msg-Id is derived from the source sequences, reason and
// body, so a write repeated after a crash is dropped by the stream's duplicate window.
func (w *Writer) Write(ctx context.Context, l Letter) error {
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
	set(HeaderReason, l.Reason)
	set(HeaderDetail, l.Detail)
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
	msg.Header.Set(nats.MsgIdHdr, letterID(l))
	if _, err := w.js.PublishMsg(ctx, msg); err != nil {
		if w.failed != nil {
			w.failed.Inc()
		}
		return fmt.Errorf("write dead letter (%s) to %s: %w", l.Reason, msg.Subject, err)
	}
	if w.written != nil {
		w.written.WithLabelValues(l.Reason).Inc()
	}
	return nil
}

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
