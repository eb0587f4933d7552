package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/liverelay/liverelay/internal/dlq"
)

const dlqLong = `Lists and shows the dead letters of LIVE_DLQ: what could not be delivered, and why.
T is an RFC 3339 time (2026-11-29T15:00:00Z), a date (2026-11-29, UTC) or a
duration ago (90s, 2h, 7d). Replay letters with "worker replay".`

// dlqEnvs are the settings "dlq list" and "dlq show" read besides the connection.
var dlqEnvs = []string{"LIVE_DLQ_STREAM", "LIVE_DLQ_PREFIX"}

// newDLQCommand is "worker dlq list" and "worker dlq show".
func (c cli) newDLQCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq list|show",
		Short: "list dead letters, or show one with its headers and body",
		Long:  dlqLong,
		Args:  cobra.ArbitraryArgs,
		// Flags belong to list and show; here only the sub-command counts.
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
		// "dlq" alone, or with an unknown sub-command: exit 2 naming the problem.
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) > 0 && args[0] == "help":
				return cmd.Help()
			case len(args) == 0:
				fmt.Fprintf(c.stderr, "worker dlq: want a sub-command, list or show\n\n%s", cmd.UsageString())
			default:
				fmt.Fprintf(c.stderr, "worker dlq: unknown sub-command %q; want list or show\n\n%s", args[0], cmd.UsageString())
			}
			return exit(2)
		},
	}
	cmd.AddCommand(c.newDLQListCommand(), c.newDLQShowCommand())
	return cmd
}

func (c cli) newDLQListCommand() *cobra.Command {
	var (
		filters filterFlags
		asJSON  bool
	)
	cmd := c.newOpsCommand(opsCommand{name: "worker dlq list", use: "list", short: "list dead letters, oldest first",
		long: "Lists dead letters, oldest first.\n\n" + dlqLong, envs: dlqEnvs},
		func(name string, conn *opsFlags, _ []string, stdout, stderr io.Writer) int {
			return dlqList(c.ctx, name, conn, &filters, asJSON, stdout, stderr)
		})
	filters.bind(cmd.Flags(), time.Now)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per letter and line, body included")
	return cmd
}

func dlqList(ctx context.Context, name string, conn *opsFlags, filters *filterFlags, asJSON bool, stdout, stderr io.Writer) int {
	f, err := filters.filter()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	ops := conn.open(stderr)
	if ops == nil {
		return 1
	}
	defer ops.close()

	var out letterPrinter = &letterTable{w: stdout}
	if asJSON {
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

func (c cli) newDLQShowCommand() *cobra.Command {
	var asJSON bool
	cmd := c.newOpsCommand(opsCommand{name: "worker dlq show", use: "show SEQ", short: "show one dead letter: every header and the body",
		nargs: 1, envs: dlqEnvs},
		func(name string, conn *opsFlags, args []string, stdout, stderr io.Writer) int {
			return dlqShow(c.ctx, name, conn, args[0], asJSON, stdout, stderr)
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the letter as one JSON object")
	return cmd
}

func dlqShow(ctx context.Context, name string, conn *opsFlags, arg string, asJSON bool, stdout, stderr io.Writer) int {
	seq, err := strconv.ParseUint(arg, 10, 64)
	if err != nil || seq == 0 {
		fmt.Fprintf(stderr, "%s: SEQ %q: want the letter's sequence number in %s (a whole number from 1), as \"worker dlq list\" shows it\n", name, arg, conn.cfg.DLQStream)
		return 2
	}
	ops := conn.open(stderr)
	if ops == nil {
		return 1
	}
	defer ops.close()
	e, err := ops.reader().Get(ctx, seq)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if asJSON {
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
