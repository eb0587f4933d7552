package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// writes records each Write call separately.
type writes struct {
	mu    sync.Mutex
	calls []string
	err   error // returned by every Write when set
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func (w *writes) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

func TestStdoutNameAndLimits(t *testing.T) {
	s := NewStdout(&bytes.Buffer{})
	if s.Name() != "stdout" {
		t.Errorf("Name = %q", s.Name())
	}
	if got := s.Limits(); got != (Limits{MaxData: 1 << 20, MaxBatch: 100}) {
		t.Errorf("Limits = %+v", got)
	}
	for _, ch := range []string{"", "a b", strings.Repeat("x", 500)} {
		if err := s.CheckChannel(ch); err != nil {
			t.Errorf("CheckChannel(%q) = %v", ch, err)
		}
	}
}

func TestStdoutLines(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
		want string
	}{
		{"update",
			Message{Channel: "page-1", Data: []byte(`{"renders":{"b":{"show":true,"content":"x"},"a":{"show":false,"content":""}},"removals":["c"]}`)},
			`{"channel":"page-1","event":"live-page-update","data":{"renders":{"b":{"show":true,"content":"x"},"a":{"show":false,"content":""}},"removals":["c"]}}` + "\n"},
		{"html kept as is",
			Message{Channel: "page-1", Data: []byte(`{"renders":{"a":{"show":true,"content":"<p>&amp;</p>"}},"removals":[]}`)},
			`{"channel":"page-1","event":"live-page-update","data":{"renders":{"a":{"show":true,"content":"<p>&amp;</p>"}},"removals":[]}}` + "\n"},
		{"channel needing escapes",
			Message{Channel: "a\"b\\<c>", Data: []byte(`{}`)},
			`{"channel":"a\"b\\<c>","event":"live-page-update","data":{}}` + "\n"},
		{"indented data on one line",
			Message{Channel: "c", Data: []byte("{\n  \"renders\": {},\r\n  \"removals\": [\"a b\"]\n}")},
			`{"channel":"c","event":"live-page-update","data":{"renders":{},"removals":["a b"]}}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w writes
			if err := NewStdout(&w).Publish(t.Context(), []Message{tc.msg}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			got := w.all()
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("wrote %q, want one write %q", got, tc.want)
			}
			if !json.Valid([]byte(got[0])) {
				t.Errorf("line is not JSON: %s", got[0])
			}
		})
	}
}

func TestStdoutRefuses(t *testing.T) {
	tests := []struct {
		name string
		msgs []Message
		want string
	}{
		{"not JSON", []Message{{Channel: "a", Data: []byte("{}")}, {Channel: "b", Data: []byte("{")}}, "message 2"},
		{"empty data", []Message{{Channel: "a"}}, "not JSON"},
		{"too large", []Message{{Channel: "a", Data: []byte(`"` + strings.Repeat("x", 1<<20) + `"`)}}, "over"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w writes
			err := NewStdout(&w).Publish(t.Context(), tc.msgs)
			var perr *Error
			if !errors.As(err, &perr) || !perr.Rejected || perr.Provider != "stdout" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a stdout rejection saying %q", err, tc.want)
			}
			if n := len(w.all()); n != 0 {
				t.Errorf("%d lines written before the rejection", n)
			}
		})
	}
}

func TestStdoutErrors(t *testing.T) {
	errDisk := errors.New("disk full")
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error // of the writer
		want error
	}{
		{"write error", t.Context(), errDisk, errDisk},
		{"cancelled", cancelled, nil, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := writes{err: tc.err}
			err := NewStdout(&w).Publish(tc.ctx, testMessages("c", 2))
			var perr *Error
			if !errors.As(err, &perr) || perr.Rejected || !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want a non-rejection wrapping %v", err, tc.want)
			}
		})
	}
}

// TestStdoutConcurrent: lines of concurrent Publish calls never interleave, and each
// call's lines keep their order.
func TestStdoutConcurrent(t *testing.T) {
	var w writes
	s := NewStdout(&w)
	const workers, perWorker = 8, 50
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			msgs := testMessages(fmt.Sprintf("page-%d", i), perWorker)
			for start := 0; start < perWorker; start += 10 {
				if err := s.Publish(t.Context(), msgs[start:start+10]); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	lines := w.all()
	if len(lines) != workers*perWorker {
		t.Fatalf("%d writes, want %d", len(lines), workers*perWorker)
	}
	next := map[string]int{}
	for _, line := range lines {
		var got struct {
			Channel string
			Event   string
			Data    struct{ Removals []string }
		}
		if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
			t.Fatalf("write is not one line: %q", line)
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if want := fmt.Sprint(next[got.Channel]); len(got.Data.Removals) != 1 || got.Data.Removals[0] != want {
			t.Fatalf("channel %s: got %v, want [%s]", got.Channel, got.Data.Removals, want)
		}
		next[got.Channel]++
	}
}
