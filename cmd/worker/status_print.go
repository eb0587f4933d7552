package main

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// print writes the report for a person: the streams, a table of partitions and one of
// workers, and a note on anything unusual. Names are clipped to one line; the caller
// escapes control characters (dispatch runs the command through escaped).
func (r *statusReport) print(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: %s in %s; %s: %s\n\n", r.Stream.Name, countOf(int(r.Stream.Messages), "message", "messages"),
		countOf(len(r.Partitions), "partition", "partitions"), r.DLQ.Name, countOf(int(r.DLQ.Messages), "dead letter", "dead letters"))

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tOWNER\tPENDING\tACK PENDING\tREDELIVERED\tLAST ACTIVITY")
	states := map[string]int{}
	for _, p := range r.Partitions {
		states[p.State]++
		if p.State == stateNoConsumer {
			fmt.Fprintf(tw, "%d\t-\t-\t-\t-\t- (no consumer %s)\n", p.Partition, p.Consumer)
			continue
		}
		last := "-"
		if p.LastActivity != nil {
			last = ago(r.Time.Sub(*p.LastActivity))
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%s\n", p.Partition, ownerText(p), p.Pending, p.AckPending, p.Redelivered, last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	b.WriteByte('\n')
	if len(r.Workers) == 0 {
		b.WriteString("no live workers\n")
	} else {
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKER\tID\tSTARTED\tPARTITIONS")
		for _, wk := range r.Workers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", clip(wk.Name, 64), clip(wk.ID, 32), ago(r.Time.Sub(wk.Started)), len(wk.Partitions))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if n := states[stateUnpinned]; n > 0 {
		fmt.Fprintf(&b, "\n%s unpinned (owner -): no live worker pulls %s, or more than one does for a moment\n"+
			"(the server pins a partition to a pulling worker as it delivers a message).\n",
			countOf(n, "partition is", "partitions are"), pick(n, "it", "them"))
	}
	if n := states[stateUnknown]; n > 0 {
		fmt.Fprintf(&b, "\n%s pinned to a client no live worker announces: a worker that took %s within the last\n"+
			"heartbeat (about a second), one that left the group or lost touch with it, or a client that is no worker.\n",
			countOf(n, "partition is", "partitions are"), pick(n, "it", "them"))
	}
	if n := states[stateNoConsumer]; n > 0 {
		fmt.Fprintf(&b, "\n%s no consumer: a worker creates %s when it starts.\n", countOf(n, "partition has", "partitions have"), pick(n, "it", "them"))
	}
	_, err := w.Write(b.Bytes())
	return err
}

// ownerText is the OWNER column: the worker's name, "-" when unpinned, or
// "unknown (<pin>)" when no live worker announces the pin.
func ownerText(p partitionStatus) string {
	switch p.State {
	case stateOwned:
		return clip(p.Owner, 64)
	case stateIdle:
		return clip(p.Owner, 64) + " (idle)"
	case stateUnknown:
		return "unknown (" + p.Pin + ")"
	default:
		return "-"
	}
}

// ago writes a duration as an age: "3s ago", "4m12s ago", "2h5m ago", "3d4h ago".
// A negative one (clocks apart) counts as 0.
func ago(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	var t string
	switch {
	case s < 60:
		t = strconv.FormatInt(s, 10) + "s"
	case s < 3600:
		t = fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 86400:
		t = fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	default:
		t = fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
	}
	return t + " ago"
}

func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
