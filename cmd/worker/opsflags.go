package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/worker"
)

// opsFlags are the connection settings of the operator commands: the same
// environment as "worker run", and a few flags.
type opsFlags struct {
	cfg config.Config
	url string
}

// newOpsFlags reads the environment and binds the connection flags. On a bad
// setting it reports it and returns a nil FlagSet and the exit code.
func newOpsFlags(name string, stderr io.Writer) (*flag.FlagSet, *opsFlags, int) {
	o := &opsFlags{cfg: config.Default()}
	if err := errors.Join(config.CheckEnv(os.Environ()), o.cfg.LoadEnv(os.LookupEnv)); err != nil {
		fmt.Fprintf(stderr, "%s: invalid setting:\n%v\n", name, err)
		return nil, nil, 2
	}
	o.url = o.cfg.NATSURL
	if o.url == "" {
		o.url = embeddedURL(o.cfg.EmbeddedListen)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "nats", o.url, "NATS `URL` [$LIVE_NATS_URL]; the default reaches a worker's embedded server (LIVE_EMBEDDED_LISTEN); auth from $LIVE_NATS_CREDS, _NKEY, _TOKEN, _USER/_PASSWORD, _TLS_*")
	fs.StringVar(&o.cfg.DLQStream, "dlq-stream", o.cfg.DLQStream, "JetStream stream of dead letters [$LIVE_DLQ_STREAM]")
	fs.StringVar(&o.cfg.DLQPrefix, "dlq-prefix", o.cfg.DLQPrefix, "dead letters are stored under <prefix>.<channel token> [$LIVE_DLQ_PREFIX]")
	return fs, o, 0
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
	nc, err := broker.Connect(o.url, "liverelay-ops", worker.Auth(c), zap.NewNop())
	if err != nil {
		return nil, fmt.Errorf("%w (set --nats or LIVE_NATS_URL)", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &ops{cfg: c, nc: nc, js: js}, nil
}

func (o *ops) close() { o.nc.Close() }

func (o *ops) reader() *dlq.Reader { return dlq.NewReader(o.js, o.cfg.DLQStream, o.cfg.DLQPrefix) }

// parseFlags parses flags placed before or after the positional arguments, and
// checks that there are exactly want of those. ok is false when the command must
// exit with code.
func parseFlags(fs *flag.FlagSet, args []string, want int) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != want {
		if want == 0 {
			fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), pos[0])
		} else {
			fmt.Fprintf(fs.Output(), "%s: want %d argument(s), got %d\n", fs.Name(), want, len(pos))
		}
		fs.Usage()
		return nil, 2, false
	}
	return pos, 0, true
}
