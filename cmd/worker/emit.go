package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
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

// Type names the value's kind in --help.
func (f renderFlags) Type() string { return "string" }

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
func (l *listFlag) Type() string       { return "string" }

// emitOptions are the flags of "worker emit" that are not settings.
type emitOptions struct {
	ev       event.Event
	removals listFlag
	file     string
	revision int64
}

// newEmitCommand is "worker emit". Its output is raw, not escaped: it prints what the
// operator gave it and the server's answer, nothing others published.
func (c cli) newEmitCommand() *cobra.Command {
	var opt emitOptions
	cmd := c.newOpsCommand(opsCommand{name: "worker emit", use: "emit --channel C [--render ID=HTML]... [--remove ID]...",
		short: "publish one CMS change event, for scripts and demos", long: "Publishes one Wagtail Live change event, as the CMS does.",
		envs: []string{"LIVE_SUBJECT_PREFIX"}, raw: true},
		func(name string, conn *opsFlags, _ []string, stdout, stderr io.Writer) int {
			return emit(c.ctx, name, conn, &opt, stdout, stderr)
		})
	fs := cmd.Flags()
	reword(fs, "subject-prefix", "events are published to <prefix>.<channel token>")
	alias(fs, "prefix", "subject-prefix")
	fs.StringVar(&opt.ev.Channel, "channel", "", "the channel id (required)")
	fs.Var(renderFlags{&opt.ev.Renders, true}, "render", "a shown post, `ID=HTML`; repeat for more, in order")
	fs.Var(renderFlags{&opt.ev.Renders, false}, "render-hidden", "a hidden post (show: false), `ID=HTML`")
	fs.Var(&opt.removals, "remove", "a removed post's `ID`; repeat for more")
	fs.Int64Var(&opt.revision, "revision", 0, "the page's change clock in microseconds (default: now)")
	fs.StringVar(&opt.file, "file", "", "publish this file's bytes as the event body, as they are (for testing bad input); --channel gives the subject")
	return cmd
}

// emit publishes one change event as the CMS would: to <prefix>.<token>, with a
// Nats-Msg-Id of <channel>:<revision> so that JetStream drops a repeat.
func emit(ctx context.Context, name string, conn *opsFlags, opt *emitOptions, stdout, stderr io.Writer) int {
	ev := opt.ev
	ev.Removals = opt.removals
	ev.Revision = opt.revision
	if ev.Revision == 0 {
		ev.Revision = time.Now().UnixMicro()
	}
	ev.EmittedAt = time.Now()
	if err := event.CheckChannel(ev.Channel); err != nil {
		fmt.Fprintf(stderr, "%s: --channel: %v\n", name, err)
		return 2
	}
	body := event.Append(nil, ev)
	msgID := ev.Channel + ":" + strconv.FormatInt(ev.Revision, 10)
	if opt.file != "" {
		b, err := os.ReadFile(opt.file)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 2
		}
		body, msgID = b, ""
	}
	cfg := conn.cfg
	nc, err := broker.Connect(conn.url(), "liverelay-emit", worker.Auth(cfg), zap.NewNop())
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	msg := &nats.Msg{Subject: cfg.SubjectPrefix + "." + event.Token(ev.Channel), Data: body, Header: nats.Header{}}
	if msgID != "" {
		msg.Header.Set(nats.MsgIdHdr, msgID)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(pctx, msg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: publish to %s: %v\n", name, msg.Subject, err)
		return 1
	}
	fmt.Fprintf(stdout, "published to %s: stream %s seq %d duplicate=%v\n", msg.Subject, ack.Stream, ack.Sequence, ack.Duplicate)
	return 0
}
