package main

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/worker"
)

// connEnvs are the settings every operator command connects with: the server and
// its authentication, as "worker run" reads them.
var connEnvs = []string{
	"LIVE_NATS_URL", "LIVE_NATS_CREDS", "LIVE_NATS_NKEY", "LIVE_NATS_TOKEN", "LIVE_NATS_USER",
	"LIVE_NATS_PASSWORD", "LIVE_NATS_TLS_CA", "LIVE_NATS_TLS_CERT", "LIVE_NATS_TLS_KEY", "LIVE_EMBEDDED_LISTEN",
	"LIVE_EMBEDDED_TOKEN", "LIVE_EMBEDDED_USER", "LIVE_EMBEDDED_PASSWORD",
}

// opsFlags are the settings of an operator command: those of the environment, and
// flags of the same names as "worker run"'s for the connection and for the streams
// the command uses (envs).
type opsFlags struct {
	name string
	cfg  config.Config
}

// newOpsFlags binds the connection flags and those of envs on cmd, defaulting to
// cfg, with --nats as a deprecated name of --nats-url.
func newOpsFlags(cmd *cobra.Command, name string, cfg config.Config, envs ...string) *opsFlags {
	o := &opsFlags{name: name, cfg: cfg}
	fs := cmd.Flags()
	o.cfg.BindSome(fs, append(slices.Clone(connEnvs), envs...)...)
	reword(fs, "nats-url", "NATS server URL(s), comma-separated; empty reaches a worker's embedded server at --embedded-listen")
	alias(fs, "nats", "nats-url")
	return o
}

// opsCommand describes an operator command: one that connects to NATS with the
// connection settings of "worker run", as newOpsCommand builds it.
type opsCommand struct {
	name             string   // what its messages begin with: "worker dlq list"
	use, short, long string   // as newCommand takes them
	nargs            int      // positional arguments it takes
	envs             []string // the settings it reads besides the connection
	raw              bool     // print as it is, not escaped (see escaper)
}

// opsRun is the run of an operator command: name begins its messages, conn holds the
// settings it connects with, and stdout and stderr escape what it prints unless the
// command is raw.
type opsRun func(name string, conn *opsFlags, args []string, stdout, stderr io.Writer) int

// newOpsCommand builds the operator command spec describes: it binds the connection
// flags and those of spec.envs, and exits 2 naming a bad environment before run does
// anything.
func (c cli) newOpsCommand(spec opsCommand, run opsRun) *cobra.Command {
	var conn *opsFlags
	output := escaped
	if spec.raw {
		output = unescaped
	}
	cmd := newCommand(spec.use, spec.short, spec.long, spec.nargs, func(args []string) int {
		return output(c.stdout, c.stderr, func(stdout, stderr io.Writer) int {
			if !c.env.check(spec.name, stderr) {
				return 2
			}
			return run(spec.name, conn, args, stdout, stderr)
		})
	})
	conn = newOpsFlags(cmd, spec.name, c.env.cfg, spec.envs...)
	return cmd
}

// reword replaces the help of a setting's flag with what it means to this command,
// keeping the variable it reads.
func reword(fs *pflag.FlagSet, name, help string) {
	f := fs.Lookup(name)
	_, env, _ := strings.Cut(f.Usage, " [$")
	f.Usage = help + " [$" + env
}

// url is the server to connect to: --nats-url, or the embedded server of a worker
// on this machine.
func (o *opsFlags) url() string {
	if o.cfg.NATSURL != "" {
		return o.cfg.NATSURL
	}
	return embeddedURL(o.cfg.EmbeddedListen)
}

// embeddedURL is the client URL of an embedded server listening on listen.
func embeddedURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "nats://127.0.0.1:4222"
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, port)
}

// ops is a connection of an operator command.
type ops struct {
	cfg config.Config
	nc  *nats.Conn
	js  jetstream.JetStream
}

func (o *opsFlags) connect() (*ops, error) {
	c := o.cfg
	nc, err := broker.Connect(o.url(), "liverelay-ops", worker.Auth(c), zap.NewNop())
	if err != nil {
		return nil, fmt.Errorf("%w (set --nats-url or LIVE_NATS_URL)", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &ops{cfg: c, nc: nc, js: js}, nil
}

// timeoutOK says on stderr, for command name, when d, its --timeout, is not positive.
func timeoutOK(name string, d time.Duration, stderr io.Writer) bool {
	if d <= 0 {
		fmt.Fprintf(stderr, "%s: --timeout %v: want a positive duration such as 10s\n", name, d)
		return false
	}
	return true
}

// open connects as connect does, or says on stderr why it cannot; nil means exit 1.
func (o *opsFlags) open(stderr io.Writer) *ops {
	c, err := o.connect()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", o.name, err)
		return nil
	}
	return c
}

func (o *ops) close() { o.nc.Close() }

func (o *ops) reader() *dlq.Reader { return dlq.NewReader(o.js, o.cfg.DLQStream, o.cfg.DLQPrefix) }
