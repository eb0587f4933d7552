package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/group"
)

// newStatusCommand is "worker status".
func (c cli) newStatusCommand() *cobra.Command {
	var (
		asJSON  bool
		timeout time.Duration
	)
	cmd := c.newOpsCommand(opsCommand{name: "worker status", use: "status",
		short: "show which worker holds each partition, what is pending, and the live workers",
		long: "Shows every partition with the worker it is pinned to and what it has pending,\n" +
			"the live workers, and the depth of the event and dead-letter streams.",
		envs: []string{"LIVE_STREAM", "LIVE_DLQ_STREAM", "LIVE_DLQ_PREFIX"}}, // the prefix is unused, but status has always taken it
		func(name string, conn *opsFlags, _ []string, stdout, stderr io.Writer) int {
			return status(c.ctx, name, conn, asJSON, timeout, stdout, stderr)
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "time allowed for reading the state from JetStream")
	return cmd
}

// status prints who consumes which partition, how far behind each partition is,
// the live workers, and the depth of the event and dead-letter streams. It reads
// JetStream only, so it works whether workers run or not.
func status(ctx context.Context, name string, conn *opsFlags, asJSON bool, timeout time.Duration, stdout, stderr io.Writer) int {
	if !timeoutOK(name, timeout, stderr) {
		return 2
	}
	ops := conn.open(stderr)
	if ops == nil {
		return 1
	}
	defer ops.close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rep, err := readStatus(ctx, ops.js, ops.cfg.Stream, ops.cfg.DLQStream, time.Now)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if asJSON {
		err = newJSONEncoder(stdout).Encode(rep)
	} else {
		err = rep.print(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// Partition states of a statusReport.
const (
	stateOwned      = "owned"       // pinned to a live worker that announces the pin
	stateUnpinned   = "unpinned"    // no worker pulls it
	stateIdle       = "idle"        // not pinned yet: one live worker pulls it, and gets it with its next message
	stateUnknown    = "unknown"     // pinned, but no live worker announces the pin
	stateNoConsumer = "no-consumer" // its consumer does not exist (no worker ever started)
)

// statusReport is what "worker status --json" prints; docs/operations.md documents it.
type statusReport struct {
	Time       time.Time         `json:"time"`
	Stream     streamStatus      `json:"stream"`
	DLQ        streamStatus      `json:"dlq"`
	Partitions []partitionStatus `json:"partitions"`
	Workers    []workerStatus    `json:"workers"`
}

type streamStatus struct {
	Name     string `json:"name"`
	Messages uint64 `json:"messages"`
}

type partitionStatus struct {
	Partition    int        `json:"partition"`
	Consumer     string     `json:"consumer"`
	State        string     `json:"state"`
	Owner        string     `json:"owner"`    // the owner's name, when owned
	OwnerID      string     `json:"owner_id"` // the owner's id, when owned
	Pin          string     `json:"pin"`      // the server's pin id, when pinned
	Pending      uint64     `json:"pending"`
	AckPending   int        `json:"ack_pending"`
	Redelivered  int        `json:"redelivered"`
	LastActivity *time.Time `json:"last_activity"` // last delivery or ack; null when none
}

type workerStatus struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Started    time.Time `json:"started"`
	Partitions []int     `json:"partitions"` // held: the server's pin is the one the worker announces
}

// readStatus reads the state of the streams, the partition consumers and the worker
// group.
func readStatus(ctx context.Context, js jetstream.JetStream, stream, dlqStream string, now func() time.Time) (*statusReport, error) {
	es, err := openStream(ctx, js, stream)
	if err != nil {
		return nil, err
	}
	events := es.CachedInfo()
	n, ok := broker.StreamPartitions(events.Config)
	if !ok {
		return nil, fmt.Errorf("stream %s has no partition transform ({{partition(n,1)}}): not a liverelay event stream (see --stream, LIVE_STREAM)", stream)
	}
	ds, err := openStream(ctx, js, dlqStream)
	if err != nil {
		return nil, err
	}
	dead := ds.CachedInfo()
	consumers, err := consumerInfos(ctx, es)
	if err != nil {
		return nil, err
	}
	top := broker.Topology{Stream: stream, Partitions: n}
	members, err := liveMembers(ctx, js, top.WorkersBucket())
	if err != nil {
		return nil, err
	}
	rep := &statusReport{
		Time:       now().UTC(),
		Stream:     streamStatus{Name: stream, Messages: events.State.Msgs},
		DLQ:        streamStatus{Name: dlqStream, Messages: dead.State.Msgs},
		Partitions: make([]partitionStatus, 0, n),
		Workers:    make([]workerStatus, 0, len(members)),
	}
	for _, m := range members {
		rep.Workers = append(rep.Workers, workerStatus{ID: m.ID, Name: m.Name, Started: m.Started.UTC(), Partitions: []int{}})
	}
	for p := range n {
		ps := partitionStatus{Partition: p, Consumer: top.ConsumerName(p), State: stateNoConsumer}
		if info := consumers[ps.Consumer]; info != nil {
			ps.State, ps.Pin = stateUnpinned, pinOf(info)
			ps.Pending, ps.AckPending, ps.Redelivered = info.NumPending, info.NumAckPending, info.NumRedelivered
			ps.LastActivity = lastActivity(info)
		}
		if ps.State == stateUnpinned {
			var pullers []int
			for i, m := range members {
				if slices.Contains(m.Pulling, p) {
					pullers = append(pullers, i)
				}
			}
			if len(pullers) == 1 {
				m := members[pullers[0]]
				ps.State, ps.Owner, ps.OwnerID = stateIdle, m.Name, m.ID
			}
		}
		if ps.Pin != "" {
			ps.State = stateUnknown
			for i, m := range members {
				if m.Pins[p] == ps.Pin {
					ps.State, ps.Owner, ps.OwnerID = stateOwned, m.Name, m.ID
					rep.Workers[i].Partitions = append(rep.Workers[i].Partitions, p)
					break
				}
			}
		}
		rep.Partitions = append(rep.Partitions, ps)
	}
	return rep, nil
}

func openStream(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("stream %s does not exist: no worker has run against this NATS yet, or it has another name (--stream, --dlq-stream)", name)
	case err != nil:
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return s, nil
}

// consumerInfos lists the consumers of a stream by name.
func consumerInfos(ctx context.Context, s jetstream.Stream) (map[string]*jetstream.ConsumerInfo, error) {
	list := s.ListConsumers(ctx)
	out := map[string]*jetstream.ConsumerInfo{}
	for info := range list.Info() {
		out[info.Name] = info
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("list the consumers of %s: %w", s.CachedInfo().Config.Name, err)
	}
	return out, nil
}

// liveMembers reads the worker group; a bucket that does not exist has no members.
func liveMembers(ctx context.Context, js jetstream.JetStream, bucket string) ([]group.Member, error) {
	kv, err := js.KeyValue(ctx, bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("key-value bucket %s: %w", bucket, err)
	}
	members, err := group.List(ctx, kv)
	if err != nil {
		return nil, fmt.Errorf("list the workers in %s: %w", bucket, err)
	}
	return members, nil
}

// pinOf is the pin id of the relay group of a partition consumer.
func pinOf(info *jetstream.ConsumerInfo) string {
	for _, g := range info.PriorityGroups {
		if g.Group == broker.PriorityGroup {
			return g.PinnedClientID
		}
	}
	return ""
}

// lastActivity is the newer of the last delivery and the last ack, or nil.
func lastActivity(info *jetstream.ConsumerInfo) *time.Time {
	var last *time.Time
	for _, t := range []*time.Time{info.Delivered.Last, info.AckFloor.Last} {
		if t != nil && !t.IsZero() && (last == nil || t.After(*last)) {
			u := t.UTC()
			last = &u
		}
	}
	return last
}
