package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/liverelay/liverelay/internal/dlq"
)

const dlqUsage = `Usage:
  worker dlq list [--channel C] [--reason R] [--since T] [--until T] [--limit N] [--json]
  worker dlq show SEQ [--json]

Lists and shows the dead letters of LIVE_DLQ: what could not be delivered, and why.
T is an RFC 3339 time (2026-11-29T15:00:00Z), a date (2026-11-29, UTC) or a
duration ago (90s, 2h, 7d). Replay letters with "worker replay".
`

// dlqCommand runs "worker dlq list" and "worker dlq show".
func dlqCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "list":
		return dlqListCommand(ctx, args[1:], stdout, stderr)
	case "show":
		return dlqShowCommand(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, dlqUsage)
		return 0
	case "":
		fmt.Fprintf(stderr, "worker dlq: want a sub-command, list or show\n\n%s", dlqUsage)
		return 2
	default:
		if strings.HasPrefix(sub, "-") {
			fmt.Fprintf(stderr, "worker dlq: want a sub-command, list or show, before the flags\n\n%s", dlqUsage)
			return 2
		}
		fmt.Fprintf(stderr, "worker dlq: unknown sub-command %q; want list or show\n\n%s", args[0], dlqUsage)
		return 2
	}
}

func dlqListCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "worker dlq list"
	fs, conn, code := newOpsFlags(name, stderr)
	if fs == nil {
		return code
	}
	var filters filterFlags
	filters.bind(fs, time.Now)
	asJSON := fs.Bool("json", false, "print one JSON object per letter and line, body included")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]\n\nLists dead letters, oldest first.\n\n", name)
		fs.PrintDefaults()
	}
	if _, code, ok := parseFlags(fs, args, 0); !ok {
		return code
	}
	f, err := filters.filter()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	ops, err := conn.connect()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer ops.close()

	var out letterPrinter = &letterTable{w: stdout}
	if *asJSON {
		out = &letterJSONLines{enc: newJSONEncoder(stdout)}
	}
	err = ops.reader().Each(ctx, f, out.add)
	if ferr := out.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if out.count() == 0 && f.Reason != "" && !f.Reason.Known() {
		fmt.Fprintf(stderr, "%s: no letter has reason %q, which is not one liverelay writes: %s\n", name, f.Reason, strings.Join(reasonNames(), ", "))
	}
	return 0
}

func dlqShowCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "worker dlq show"
	fs, conn, code := newOpsFlags(name, stderr)
	if fs == nil {
		return code
	}
	asJSON := fs.Bool("json", false, "print the letter as one JSON object")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s SEQ [flags]\n\nShows one dead letter: every header and the body.\n\n", name)
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, args, 1)
	if !ok {
		return code
	}
	seq, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil || seq == 0 {
		fmt.Fprintf(stderr, "%s: SEQ %q: want the letter's sequence number in %s (a whole number from 1), as \"worker dlq list\" shows it\n", name, pos[0], conn.cfg.DLQStream)
		return 2
	}
	ops, err := conn.connect()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer ops.close()
	e, err := ops.reader().Get(ctx, seq)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if *asJSON {
		err = newJSONEncoder(stdout).Encode(toLetterJSON(e))
	} else {
		err = showLetter(stdout, conn.cfg.DLQStream, e)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// reasonNames are the reasons liverelay writes letters with (dlq.Reasons).
func reasonNames() []string {
	var out []string
	for _, r := range dlq.Reasons() {
		out = append(out, string(r.Reason))
	}
	return out
}
