package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/liverelay/liverelay/internal/dlq"
	"github.com/liverelay/liverelay/internal/event"
)

// replayOptions are the flags of "worker replay" that are not settings.
type replayOptions struct {
	filters        filterFlags
	dryRun         bool
	includeInvalid bool
	every          int
	timeout        time.Duration
}

const replayLong = `Re-publishes dead letters to the event stream, oldest first, and deletes each
letter once JetStream stored its event. Replayed events pass the revision fence:
a letter older than what readers already have changes nothing.`

// newReplayCommand is "worker replay".
func (c cli) newReplayCommand() *cobra.Command {
	var opt replayOptions
	cmd := c.newOpsCommand(opsCommand{name: "worker replay", use: "replay",
		short: "re-publish dead letters through the pipeline (fenced: no page rolls back)", long: replayLong,
		envs: []string{"LIVE_DLQ_STREAM", "LIVE_DLQ_PREFIX", "LIVE_STREAM", "LIVE_SUBJECT_PREFIX"}},
		func(name string, conn *opsFlags, _ []string, stdout, stderr io.Writer) int {
			return replay(c.ctx, name, conn, &opt, stdout, stderr)
		})
	fs := cmd.Flags()
	reword(fs, "stream", "JetStream stream of events the letters go back to")
	reword(fs, "subject-prefix", "letters are re-published to <prefix>.<channel token>")
	opt.filters.bind(fs, time.Now)
	fs.BoolVar(&opt.dryRun, "dry-run", false, "list what would be replayed; publish and delete nothing")
	fs.BoolVar(&opt.includeInvalid, "include-invalid", false, "also replay letters whose body is not a valid event, as they are (they will most likely be dead-lettered again)")
	fs.IntVar(&opt.every, "every", 1, "print a progress line every `N` letters (failures are always printed)")
	fs.DurationVar(&opt.timeout, "timeout", 10*time.Second, "time allowed for each re-publish and each delete")
	return cmd
}

// replay re-publishes dead letters into the event stream, through the normal
// pipeline (merged, ordered and fenced like fresh events), and deletes each letter
// once JetStream acknowledged its re-publish. Exit 0 when every letter went well
// (skipped invalid ones included), 1 when some failed or the read did.
func replay(ctx context.Context, name string, conn *opsFlags, opt *replayOptions, stdout, stderr io.Writer) int {
	f, err := opt.filters.filter()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	if opt.every < 1 {
		fmt.Fprintf(stderr, "%s: --every %d: want 1 or more\n", name, opt.every)
		return 2
	}
	if !timeoutOK(name, opt.timeout, stderr) {
		return 2
	}
	ops := conn.open(stderr)
	if ops == nil {
		return 1
	}
	defer ops.close()
	rep, err := dlq.NewReplayer(ops.js, ops.reader(), dlq.ReplayConfig{
		EventsStream:   ops.cfg.Stream,
		EventsPrefix:   ops.cfg.SubjectPrefix,
		DryRun:         opt.dryRun,
		IncludeInvalid: opt.includeInvalid,
		Timeout:        opt.timeout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}

	mode := "replaying"
	if opt.dryRun {
		mode = "dry run: would replay"
	}
	fmt.Fprintf(stdout, "%s letters of %s into %s (%s.<channel token>)\n", mode, ops.cfg.DLQStream, ops.cfg.Stream, ops.cfg.SubjectPrefix)
	n := 0
	sum, err := rep.Replay(ctx, f, func(o dlq.Outcome) {
		n++
		if o.Action == dlq.ActionFailed || n%opt.every == 0 {
			fmt.Fprintln(stdout, progressLine(o, ops.cfg.Stream))
		}
	})
	fmt.Fprintln(stdout, summaryLine(sum, opt.dryRun))
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "%s: interrupted; letters not yet replayed stay in %s\n", name, ops.cfg.DLQStream)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	case sum.Failed > 0:
		fmt.Fprintf(stderr, "%s: %s failed and stay in %s; run replay again once the cause is fixed\n", name, countOf(sum.Failed, "letter", "letters"), ops.cfg.DLQStream)
		return 1
	}
	if sum.SkippedInvalid > 0 && !opt.includeInvalid {
		fmt.Fprintf(stderr, "%s: skipped %s whose body is not a valid event (see \"worker dlq show SEQ\"; --include-invalid replays such letters as they are)\n", name, countOf(sum.SkippedInvalid, "letter", "letters"))
	}
	return 0
}

// progressLine says what happened to one letter.
func progressLine(o dlq.Outcome, stream string) string {
	e := o.Entry
	ch := e.Channel
	if ch == "" {
		if c, err := event.Channel(e.Token); err == nil {
			ch = c
		} else {
			ch = "?"
		}
	}
	head := fmt.Sprintf("%-15s seq %-6d %-20s %-18s", o.Action, e.Seq, clip(ch, 20), dashIfEmpty(string(e.Reason)))
	switch o.Action {
	case dlq.ActionReplayed:
		return fmt.Sprintf("%s → %s (%s seq %d)", head, o.Subject, stream, o.EventSeq)
	case dlq.ActionDuplicate:
		return fmt.Sprintf("%s → %s (already stored as %s seq %d by an earlier or concurrent replay; letter deleted)", head, o.Subject, stream, o.EventSeq)
	case dlq.ActionWouldReplay:
		return fmt.Sprintf("%s → %s", head, o.Subject)
	case dlq.ActionSkipped:
		var de *event.Error
		if errors.As(o.Err, &de) {
			return fmt.Sprintf("%s not a valid event (%s): %s", head, de.Reason, de.Detail)
		}
		return fmt.Sprintf("%s not a valid event: %v", head, o.Err)
	default:
		return fmt.Sprintf("%s %v", head, o.Err)
	}
}

func summaryLine(s dlq.Summary, dryRun bool) string {
	if dryRun {
		return fmt.Sprintf("dry run: %d would be replayed, %d skipped (invalid); nothing was published or deleted", s.WouldReplay, s.SkippedInvalid)
	}
	return fmt.Sprintf("replay: %d replayed, %d already replayed (duplicates), %d skipped (invalid), %d failed", s.Replayed, s.Duplicates, s.SkippedInvalid, s.Failed)
}
