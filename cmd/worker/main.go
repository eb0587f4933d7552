// Command worker is liverelay: it carries Wagtail Live's live-page updates from NATS
// JetStream to a hosted WebSocket provider. See README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `liverelay worker: carries Wagtail Live updates from NATS JetStream to browsers.

Usage:
  worker [run] [flags]     run the relay (the default); settings come from LIVE_* env vars or flags
  worker emit [flags]      publish one CMS change event, for scripts and demos
  worker dlq list|show     list dead letters, or show one with its headers and body
  worker replay [flags]    re-publish dead letters through the pipeline (fenced: no page rolls back)
  worker status [--json]   show which worker holds each partition, what is pending, and the live workers
  worker health [flags]    exit 0 if the worker on LIVE_HTTP_ADDR is ready (a container HEALTHCHECK)
  worker bench [flags]     measure throughput, latency, provider messages, CPU and memory locally
  worker version           print the version
  worker COMMAND --help    the flags of a command
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// dispatch runs a sub-command and returns the process exit code: 0 on success, 1 on a
// failure while running, 2 on a usage or configuration error.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runCommand(ctx, args, stdout, stderr)
	case "emit":
		return emitCommand(ctx, args, stdout, stderr)
	case "dlq":
		return escaped(stdout, stderr, func(stdout, stderr io.Writer) int { return dlqCommand(ctx, args, stdout, stderr) })
	case "replay":
		return escaped(stdout, stderr, func(stdout, stderr io.Writer) int { return replayCommand(ctx, args, stdout, stderr) })
	case "status":
		return escaped(stdout, stderr, func(stdout, stderr io.Writer) int { return statusCommand(ctx, args, stdout, stderr) })
	case "bench":
		return benchCommand(ctx, args, stdout, stderr)
	case "health":
		return healthCommand(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "liverelay worker", version)
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
