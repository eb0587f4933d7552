package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/liverelay/liverelay/internal/event"
)

// Stdout limits: generous, it only prints. MaxBatch matches what a real provider
// call would group, so the pipeline behaves the same with or without an account.
const (
	stdoutMaxData  = 1 << 20
	stdoutMaxBatch = 100
)

// Stdout is the provider for running without an account: it writes each message it
// would publish as one JSON line,
//
//	{"channel":"<ch>","event":"live-page-update","data":{"renders":{...},"removals":[...]}}
//
// with the data embedded as JSON, byte for byte as a provider would receive it (only
// line breaks between JSON tokens are removed, to keep one message per line).
type Stdout struct {
	mu  sync.Mutex // one line at a time, whole
	w   io.Writer
	buf []byte // reused line buffer, guarded by mu
}

// NewStdout returns a Stdout provider writing to w (os.Stdout in the worker).
func NewStdout(w io.Writer) *Stdout {
	return &Stdout{w: w}
}

// Name is the provider name used in errors, logs and DLQ headers.
func (s *Stdout) Name() string { return "stdout" }

// Limits are 1 MiB per message and 100 messages per call.
func (s *Stdout) Limits() Limits {
	return Limits{MaxData: stdoutMaxData, MaxBatch: stdoutMaxBatch}
}

// CheckChannel accepts every channel: a line can carry any name.
func (s *Stdout) CheckChannel(string) error { return nil }

// Publish writes one line per message, in order, each with a single Write call. It
// refuses, before writing anything, data that is not JSON (it would break the line)
// or over the limit, and stops at the first write error.
func (s *Stdout) Publish(ctx context.Context, msgs []Message) error {
	for i, m := range msgs {
		switch {
		case len(m.Data) > stdoutMaxData:
			return &Error{Provider: s.Name(), Rejected: true,
				Err: fmt.Errorf("message %d for channel %q: data of %d bytes is over %d", i+1, m.Channel, len(m.Data), stdoutMaxData)}
		case !json.Valid(m.Data):
			return &Error{Provider: s.Name(), Rejected: true,
				Err: fmt.Errorf("message %d for channel %q: data is not JSON", i+1, m.Channel)}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return &Error{Provider: s.Name(), Err: fmt.Errorf("write channel %q: %w", m.Channel, err)}
		}
		s.buf = appendLine(s.buf[:0], m)
		if _, err := s.w.Write(s.buf); err != nil {
			return &Error{Provider: s.Name(), Err: fmt.Errorf("write channel %q: %w", m.Channel, err)}
		}
	}
	return nil
}

// appendLine appends the line of one message.
func appendLine(dst []byte, m Message) []byte {
	dst = append(dst, `{"channel":`...)
	dst = event.AppendString(dst, m.Channel)
	dst = append(dst, `,"event":`...)
	dst = event.AppendString(dst, EventName)
	dst = append(dst, `,"data":`...)
	if bytes.ContainsAny(m.Data, "\r\n") {
		// Indented JSON would split the line: drop the insignificant white space.
		var b bytes.Buffer
		if json.Compact(&b, m.Data) == nil {
			dst = append(dst, b.Bytes()...)
			return append(dst, "}\n"...)
		}
	}
	dst = append(dst, m.Data...)
	return append(dst, "}\n"...)
}
