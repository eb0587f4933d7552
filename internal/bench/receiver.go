package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// receiver is the benchmark's provider: it accepts Pusher batch_events and single
// trigger requests as Pusher does (JSON body, ≤ 10 events, data ≤ 10 KB), optionally
// after a fixed delay (a provider across the internet) or with 500s (an outage), and
// measures latency from the revision clock written into each post (data-rev, the
// event's emission time in microseconds) to receipt.
type receiver struct {
	srv      *http.Server
	ln       net.Listener
	delay    time.Duration
	down     atomic.Bool
	requests atomic.Int64
	failed   atomic.Int64
	messages atomic.Int64

	mu        sync.Mutex
	latencies []uint32 // microseconds
}

func newReceiver(delay time.Duration) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{ln: ln, delay: delay, latencies: make([]uint32, 0, 1<<16)}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) host() string { return r.ln.Addr().String() }

func (r *receiver) close() { _ = r.srv.Close() }

type batch struct {
	Batch []struct {
		Channel string `json:"channel"`
		Name    string `json:"name"`
		Data    string `json:"data"`
	} `json:"batch"`
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.delay > 0 {
		t := time.NewTimer(r.delay)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return
		}
	}
	if r.down.Load() {
		r.failed.Add(1)
		http.Error(w, "provider outage (benchmark)", http.StatusInternalServerError)
		return
	}
	var b batch
	if err := json.Unmarshal(body, &b); err != nil || len(b.Batch) == 0 || len(b.Batch) > 10 {
		http.Error(w, "bad batch", http.StatusBadRequest)
		return
	}
	now := time.Now().UnixMicro()
	var lats []uint32
	for _, e := range b.Batch {
		if len(e.Data) > 10240 {
			http.Error(w, "data too large", http.StatusRequestEntityTooLarge)
			return
		}
		lats = appendLatencies(lats, e.Data, now)
	}
	r.messages.Add(int64(len(b.Batch)))
	r.mu.Lock()
	r.latencies = append(r.latencies, lats...)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{}`))
}

var revMark = []byte(`data-rev=\"`)

// appendLatencies finds every data-rev in an update and appends now minus it.
func appendLatencies(dst []uint32, data string, now int64) []uint32 {
	b := []byte(data)
	for {
		i := bytes.Index(b, revMark)
		if i < 0 {
			return dst
		}
		b = b[i+len(revMark):]
		j := bytes.IndexByte(b, '\\')
		if j < 0 {
			return dst
		}
		rev, err := strconv.ParseInt(string(b[:j]), 10, 64)
		if err == nil && rev <= now {
			dst = append(dst, uint32(min(now-rev, 1<<32-1)))
		}
		b = b[j:]
	}
}

func (r *receiver) takeLatencies() []uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.latencies
	r.latencies = make([]uint32, 0, 1<<16)
	return out
}
