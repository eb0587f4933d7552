// Command worker is liverelay: it carries Wagtail Live's live-page updates from NATS
// JetStream to a hosted WebSocket provider. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/liverelay/liverelay/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// dispatch runs a command and returns the process exit code: 0 on success, 1 on a
// failure while running, 2 on a usage or configuration error.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(ctx, loadEnv(), stdout, stderr)
	root.SetArgs(longFlags(root, args))
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	var exit exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return int(exit)
	default: // a bad flag, argument or command: cobra's message names it
		fmt.Fprintf(stderr, "%s: %v\nRun \"worker --help\" for the commands, \"worker COMMAND --help\" for their flags.\n", cmd.CommandPath(), err)
		return 2
	}
}

// exitError ends a command with its exit code; the command has already said why.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exit turns a command's exit code into what RunE returns.
func exit(code int) error {
	if code == 0 {
		return nil
	}
	return exitError(code)
}

// env is the environment every command reads: the settings table's defaults
// overridden by LIVE_*, PUSHER_*, ABLY_* and PIESOCKET_* variables, and what was wrong
// with them (an unknown variable or a bad value), reported by each command that uses
// them before it does anything.
type env struct {
	cfg config.Config
	err error
}

func loadEnv() env {
	cfg := config.Default()
	return env{cfg: cfg, err: errors.Join(config.CheckEnv(os.Environ()), cfg.LoadEnv(os.LookupEnv))}
}

// check reports a bad environment under the command's name; false means exit 2.
func (e env) check(name string, stderr io.Writer) bool {
	if e.err != nil {
		fmt.Fprintf(stderr, "%s: invalid setting:\n%v\n", name, e.err)
		return false
	}
	return true
}
