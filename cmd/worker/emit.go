package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/worker"
)

// renderFlags collects repeated --render ID=HTML flags in order.
type renderFlags struct {
	renders *[]event.Render
	show    bool
}

func (f renderFlags) String() string { return "" }

func (f renderFlags) Set(v string) error {
	id, html, ok := strings.Cut(v, "=")
	if !ok || id == "" {
		return fmt.Errorf("want POST_ID=HTML, got %q", v)
	}
	*f.renders = append(*f.renders, event.Render{ID: id, Show: f.show, Content: html})
	return nil
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// emitCommand publishes one change event as the CMS would: to <prefix>.<token>, with a
// Nats-Msg-Id of <channel>:<revision> so that JetStream drops a repeat.
func emitCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker emit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		ev       event.Event
		removals listFlag
		file     string
		url      = envOr("LIVE_NATS_URL", "nats://"+envOr("LIVE_EMBEDDED_LISTEN", "127.0.0.1:4222"))
		prefix   = envOr("LIVE_SUBJECT_PREFIX", "live.events")
		revision = fs.Int64("revision", time.Now().UnixMicro(), "the page's change clock in microseconds (default: now)")
	)
	fs.StringVar(&ev.Channel, "channel", "", "the channel id (required)")
	fs.Var(renderFlags{&ev.Renders, true}, "render", "POST_ID=HTML: a shown post; repeat for more, in order")
	fs.Var(renderFlags{&ev.Renders, false}, "render-hidden", "POST_ID=HTML: a hidden post (show: false)")
	fs.Var(&removals, "remove", "POST_ID: a removed post; repeat for more")
	fs.StringVar(&file, "file", "", "publish this file's bytes as the event body, as they are (for testing bad input); --channel gives the subject")
	fs.StringVar(&url, "nats", url, "NATS URL [$LIVE_NATS_URL]; the default reaches the worker's embedded server")
	fs.StringVar(&prefix, "prefix", prefix, "subject prefix [$LIVE_SUBJECT_PREFIX]")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: worker emit --channel C [--render ID=HTML ...] [--remove ID ...]\n\nPublishes one Wagtail Live change event.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "worker emit: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ev.Removals = removals
	ev.Revision = *revision
	ev.EmittedAt = time.Now()
	if err := event.CheckChannel(ev.Channel); err != nil {
		fmt.Fprintf(stderr, "worker emit: --channel: %v\n", err)
		return 2
	}
	body := event.Append(nil, ev)
	msgID := ev.Channel + ":" + strconv.FormatInt(ev.Revision, 10)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "worker emit: %v\n", err)
			return 2
		}
		body, msgID = b, ""
	}

	cfg := config.Default()
	if err := errors.Join(config.CheckEnv(os.Environ()), cfg.LoadEnv(os.LookupEnv)); err != nil {
		fmt.Fprintf(stderr, "worker emit: invalid setting:\n%v\n", err)
		return 2
	}
	nc, err := broker.Connect(url, "liverelay-emit", worker.Auth(cfg), zap.NewNop())
	if err != nil {
		fmt.Fprintf(stderr, "worker emit: %v\n", err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintf(stderr, "worker emit: %v\n", err)
		return 1
	}
	msg := &nats.Msg{Subject: prefix + "." + event.Token(ev.Channel), Data: body, Header: nats.Header{}}
	if msgID != "" {
		msg.Header.Set(nats.MsgIdHdr, msgID)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(pctx, msg)
	if err != nil {
		fmt.Fprintf(stderr, "worker emit: publish to %s: %v\n", msg.Subject, err)
		return 1
	}
	fmt.Fprintf(stdout, "published to %s: stream %s seq %d duplicate=%v\n", msg.Subject, ack.Stream, ack.Sequence, ack.Duplicate)
	return 0
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}
