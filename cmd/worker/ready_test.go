package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/event"
)

// readyz is one answer of /readyz.
type readyz struct {
	code   int
	status string
	reason string
	raw    string
}

// freeAddr returns a loopback address with a port that was free a moment ago, for
// LIVE_HTTP_ADDR: "127.0.0.1:0" would not tell the test which port the worker took.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// getReadyz asks /readyz once; err is set when no HTTP answer came (not listening yet).
func getReadyz(t *testing.T, client *http.Client, addr string) (readyz, error) {
	t.Helper()
	resp, err := client.Get("http://" + addr + "/readyz")
	if err != nil {
		return readyz{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return readyz{}, err
	}
	r := readyz{code: resp.StatusCode, raw: string(body)}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("/readyz answered %d with Content-Type %q: %s", r.code, ct, body)
	}
	var v struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("/readyz answered %d with a body that is not JSON: %q (%v)", r.code, body, err)
	}
	r.status, r.reason = v.Status, v.Reason
	switch {
	case r.code == http.StatusOK && (r.status != "ready" || r.reason != ""):
		t.Fatalf("/readyz answered 200 with %s, want {\"status\":\"ready\"}", body)
	case r.code == http.StatusServiceUnavailable && (r.status != "not ready" || r.reason == ""):
		t.Fatalf("/readyz answered 503 with %s, want status \"not ready\" and a reason", body)
	case r.code != http.StatusOK && r.code != http.StatusServiceUnavailable:
		t.Fatalf("/readyz answered %d: %s", r.code, body)
	}
	return r, nil
}

// waitReadyz polls /readyz until it answers code, and returns that answer and how long
// it took.
func waitReadyz(t *testing.T, addr string, code int, timeout time.Duration) (readyz, time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	start := time.Now()
	deadline := start.Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var last readyz
	var lastErr error
	for {
		r, err := getReadyz(t, client, addr)
		if err == nil && r.code == code {
			return r, time.Since(start)
		}
		last, lastErr = r, err
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer %d within %v; last answer %d %s (error %v)", code, timeout, last.code, last.raw, lastErr)
		}
		<-tick.C
	}
}

// TestReadyzFollowsNATS: /readyz answers 200 while the worker consumes, 503 naming NATS
// as soon as the NATS server is gone, and 200 again once it is back, without a
// restart of the worker; events then flow again.
func TestReadyzFollowsNATS(t *testing.T) {
	h := newHarness(t)
	h.cfg.HTTPAddr = freeAddr(t)
	h.startWorker()

	r, took := waitReadyz(t, h.cfg.HTTPAddr, http.StatusOK, 30*time.Second)
	t.Logf("ready %v after start: %s", took.Round(time.Millisecond), strings.TrimSpace(r.raw))

	h.nats.Shutdown()
	// The first 503 must name the lost connection: the lease would also turn /readyz
	// to 503 (“cut off from NATS long enough to lose its pins”), but only seconds
	// later, and that is not what an operator needs to read.
	r, took = waitReadyz(t, h.cfg.HTTPAddr, http.StatusServiceUnavailable, 10*time.Second)
	t.Logf("NATS down: 503 after %v: %s", took.Round(time.Millisecond), strings.TrimSpace(r.raw))
	if !strings.Contains(r.reason, "not connected to NATS") {
		t.Errorf("first 503 after %v says %q, want a reason saying the worker is not connected to NATS", took.Round(time.Millisecond), r.reason)
	}
	if v := scrape(t, h.cfg.HTTPAddr, "liverelay_nats_connected"); v != 0 {
		t.Errorf("NATS down: liverelay_nats_connected %v, want 0", v)
	}

	h.nats.Restart()
	r, took = waitReadyz(t, h.cfg.HTTPAddr, http.StatusOK, 30*time.Second)
	t.Logf("NATS back: 200 after %v: %s", took.Round(time.Millisecond), strings.TrimSpace(r.raw))
	if v := scrape(t, h.cfg.HTTPAddr, "liverelay_nats_connected"); v != 1 {
		t.Errorf("NATS back: liverelay_nats_connected %v, want 1", v)
	}
	if v := scrape(t, h.cfg.HTTPAddr, "liverelay_nats_reconnects_total"); v < 1 {
		t.Errorf("NATS back: liverelay_nats_reconnects_total %v, want at least 1", v)
	}

	// Ready means consuming: an event published now reaches the provider.
	h.publish(event.Event{Channel: "after-restart", Renders: []event.Render{{ID: "p1", Show: true, Content: "<p>back</p>"}}, Revision: time.Now().UnixMicro()})
	h.waitDelivered(30 * time.Second)
	if got := len(h.pages()["after-restart"].Posts); got != 1 {
		t.Errorf("after NATS came back, readers see %d posts on the channel, want 1", got)
	}
}

// TestReadyzNotReadyBeforeConsuming: while the worker has not started its partition
// consumers, /readyz answers 503 "not consuming", and 200 once it has. The worker's
// NATS connection goes through a proxy that holds the worker's first request for a
// partition consumer until the test has seen the 503.
func TestReadyzNotReadyBeforeConsuming(t *testing.T) {
	h := newHarness(t)
	gate := newGateProxy(t, h.nats.URL(), []byte("$JS.API.CONSUMER.INFO."+h.cfg.Stream+"."+h.cfg.Stream+"_P"))
	h.cfg.NATSURL = gate.URL()
	h.cfg.HTTPAddr = freeAddr(t)
	h.startWorker()

	select {
	case <-gate.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not ask for a partition consumer within 30s")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	r, err := getReadyz(t, client, h.cfg.HTTPAddr)
	for deadline := time.Now().Add(10 * time.Second); err != nil; r, err = getReadyz(t, client, h.cfg.HTTPAddr) {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer within 10s: %v", err)
		}
	}
	t.Logf("before the consumers started: %d %s", r.code, strings.TrimSpace(r.raw))
	if r.code != http.StatusServiceUnavailable || r.reason != "not consuming" {
		t.Errorf("/readyz before the partition consumers started answered %d %s, want 503 with reason \"not consuming\"", r.code, strings.TrimSpace(r.raw))
	}

	gate.open()
	r, took := waitReadyz(t, h.cfg.HTTPAddr, http.StatusOK, 30*time.Second)
	t.Logf("consumers started: 200 after %v: %s", took.Round(time.Millisecond), strings.TrimSpace(r.raw))
}

// gateProxy forwards TCP connections to a NATS server; the first time a client sends
// pattern, it holds that client's bytes (from the read that carried it on) until open
// is called. held is closed when that happens.
type gateProxy struct {
	ln       net.Listener
	target   string
	pattern  []byte
	held     chan struct{}
	released chan struct{}
	once     sync.Once
	openOnce sync.Once
}

func newGateProxy(t *testing.T, targetURL string, pattern []byte) *gateProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gateProxy{ln: ln, target: strings.TrimPrefix(targetURL, "nats://"), pattern: pattern,
		held: make(chan struct{}), released: make(chan struct{})}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", g.target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, s)
			mu.Unlock()
			conns.Add(2)
			go func() { defer conns.Done(); _, _ = io.Copy(c, s); c.Close() }()
			go func() { defer conns.Done(); g.forward(s, c); s.Close() }()
		}
	}()
	t.Cleanup(func() {
		g.open()
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	return g
}

// URL is the proxy's NATS URL.
func (g *gateProxy) URL() string { return "nats://" + g.ln.Addr().String() }

// open lets held bytes, and all that follow, through.
func (g *gateProxy) open() { g.openOnce.Do(func() { close(g.released) }) }

// forward copies client bytes to the server, holding them once pattern was seen.
func (g *gateProxy) forward(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	var tail []byte // the end of what came before, for a pattern split over two reads
	for {
		n, err := src.Read(buf)
		if n > 0 {
			seen := append(tail, buf[:n]...)
			if bytes.Contains(seen, g.pattern) {
				g.once.Do(func() {
					close(g.held)
					<-g.released
				})
			}
			tail = append([]byte(nil), seen[max(len(seen)-len(g.pattern)+1, 0):]...)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// scrape reads the value of an unlabelled series from the worker's /metrics.
func scrape(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("metrics: no %s", series)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}
