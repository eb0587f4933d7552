package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newHealthCommand is "worker health": it asks the worker running beside it (on
// LIVE_HTTP_ADDR) whether it is ready, or only alive, for container health checks —
// the distroless image has no shell or curl. Exit 0 when the worker answered 200, 1
// otherwise, 2 for a bad flag.
func (c cli) newHealthCommand() *cobra.Command {
	const name = "worker health"
	var (
		path    string
		timeout time.Duration
	)
	cfg := c.env.cfg
	cmd := newCommand("health", "exit 0 if the worker on LIVE_HTTP_ADDR is ready (a container HEALTHCHECK)",
		"Asks the worker on LIVE_HTTP_ADDR whether it is ready (exit 0) or not (exit 1), for a container HEALTHCHECK.",
		0, c.checkedRun(name, func() int { return askHealth(c.ctx, name, cfg.HTTPAddr, path, timeout, c.stdout, c.stderr) }))
	cfg.BindSome(cmd.Flags(), "LIVE_HTTP_ADDR")
	reword(cmd.Flags(), "http-addr", "address the worker serves /healthz and /readyz on")
	cmd.Flags().StringVar(&path, "path", "/readyz", "endpoint to ask: /readyz (connected to NATS and consuming) or /healthz (the process answers)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return cmd
}

// askHealth asks addr's path and returns the exit code.
func askHealth(ctx context.Context, name, addr, path string, timeout time.Duration, stdout, stderr io.Writer) int {
	if path != "/readyz" && path != "/healthz" {
		fmt.Fprintf(stderr, "%s: --path %q: want /readyz or /healthz\n", name, path)
		return 2
	}
	url, err := healthURL(addr, path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprintf(stdout, "%s %d %s\n", url, resp.StatusCode, strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// healthURL is the URL of path on the worker listening on addr; a listener on every
// interface (":9090", "0.0.0.0:9090") is reached on loopback.
func healthURL(addr, path string) (string, error) {
	if addr == "" {
		return "", errors.New("LIVE_HTTP_ADDR is empty: the worker serves no health endpoint")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("LIVE_HTTP_ADDR=%q: want host:port such as :9090", addr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}
