package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// child is a worker process under measurement: its memory is its own, not mixed with
// the benchmark's NATS server, load generator and provider.
type child struct {
	cmd     *exec.Cmd
	metrics string // URL of its /metrics
	stderr  bytes.Buffer
}

// startChild runs `<exe> run` with env added to the benchmark's environment and waits
// until it is ready.
func startChild(ctx context.Context, exe string, env []string) (*child, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	c := &child{metrics: "http://" + addr + "/metrics"}
	c.cmd = exec.Command(exe, "run")
	c.cmd.Env = append(append(os.Environ(), env...), "LIVE_HTTP_ADDR="+addr, "LIVE_LOG_LEVEL=warn", "LIVE_LOG_FORMAT=json")
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("worker not ready within 30s: %s", c.stderr.String())
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		}
	}
}

// peakRSS is the child's peak resident set (VmHWM) in bytes.
func (c *child) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", c.cmd.Process.Pid)
}

// metric reads one unlabelled metric from the child's /metrics.
func (c *child) metric(name string) (float64, error) {
	resp, err := http.Get(c.metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(rest, 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// stop sends SIGTERM and waits for a clean exit.
func (c *child) stop() error { return terminate(c.cmd, "worker", &c.stderr) }
