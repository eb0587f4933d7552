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

// opsFlags are the settings of an operator command: the environment every command
// reads, and flags of the same names as "worker run"'s for the connection and for
// the streams the command uses (envs).
type opsFlags struct {
	name string
	env  env
	cfg  config.Config
}

// newOpsFlags binds the connection flags and those of envs on cmd, with --nats as a
// deprecated name of --nats-url.
func newOpsFlags(cmd *cobra.Command, name string, e env, envs ...string) *opsFlags {
	o := &opsFlags{name: name, env: e, cfg: e.cfg}
	fs := cmd.Flags()
	o.cfg.BindSome(fs, append(slices.Clone(connEnvs), envs...)...)
	reword(fs, "nats-url", "NATS server URL(s), comma-separated; empty reaches a worker's embedded server at --embedded-listen")
	alias(fs, "nats", "nats-url")
	return o
}

// reword replaces the help of a setting's flag with what it means to this command,
// keeping the variable it reads.
func reword(fs *pflag.FlagSet, name, help string) {
	f := fs.Lookup(name)
	_, env, _ := strings.Cut(f.Usage, " [$")
	f.Usage = help + " [$" + env
}

// ok reports a bad environment; false means exit 2.
func (o *opsFlags) ok(stderr io.Writer) bool { return o.env.check(o.name, stderr) }

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
