package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/liverelay/liverelay/internal/config"
)

// healthCommand asks the worker running beside it (on LIVE_HTTP_ADDR) whether it is
// ready, or only alive, for container health checks: the distroless image has no
// shell or curl. Exit 0 when the worker answered 200, 1 otherwise, 2 for a bad flag.
func healthCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := config.Default()
	if err := errors.Join(config.CheckEnv(os.Environ()), cfg.LoadEnv(os.LookupEnv)); err != nil {
		fmt.Fprintf(stderr, "worker health: invalid setting:\n%v\n", err)
		return 2
	}
	fs := flag.NewFlagSet("worker health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", cfg.HTTPAddr, "address the worker serves /healthz and /readyz on [$LIVE_HTTP_ADDR]")
	path := fs.String("path", "/readyz", "endpoint to ask: /readyz (connected to NATS and consuming) or /healthz (the process answers)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: worker health [flags]\n\nAsks the worker on LIVE_HTTP_ADDR whether it is ready (exit 0) or not (exit 1), for a container HEALTHCHECK.\n\n")
		fs.PrintDefaults()
	}
	if _, code, ok := parseFlags(fs, args, 0); !ok {
		return code
	}
	if *path != "/readyz" && *path != "/healthz" {
		fmt.Fprintf(stderr, "worker health: --path %q: want /readyz or /healthz\n", *path)
		return 2
	}
	url, err := healthURL(*addr, *path)
	if err != nil {
		fmt.Fprintf(stderr, "worker health: %v\n", err)
		return 2
	}
	hctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "worker health: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "worker health: %v\n", err)
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
