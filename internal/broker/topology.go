package broker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PriorityGroup is the priority group every worker pulls with; the server pins each
// partition's consumer to one worker of the group.
const PriorityGroup = "relay"

// Topology names liverelay's streams, subjects and consumers.
//
// The CMS publishes a channel's events to "<Prefix>.<token>". The stream stores them as
// "<Prefix>.<partition>.<token>", where the partition is FNV-1a of the token mod
// Partitions (the server's {{partition}} transform), so a channel always lands in one
// partition and one durable consumer per partition reads it in order.
type Topology struct {
	Stream          string
	Prefix          string
	DLQStream       string
	DLQPrefix       string
	Partitions      int
	Replicas        int
	DuplicateWindow time.Duration
	MaxAge          time.Duration // how long LIVE_EVENTS keeps events, acked or not
	DLQMaxAge       time.Duration // how long LIVE_DLQ keeps letters; 0 keeps them until replayed or purged
}

// ConsumerConfig is what each partition consumer is created with.
type ConsumerConfig struct {
	AckWait       time.Duration
	MaxDeliver    int
	MaxAckPending int // for all partitions together
	PinnedTTL     time.Duration
}

// transform returns the stream's subject transform destination.
func (t Topology) transform() string {
	return fmt.Sprintf("%s.{{partition(%d,1)}}.{{wildcard(1)}}", t.Prefix, t.Partitions)
}

// PartitionFilter is the stored subject filter of partition p.
func (t Topology) PartitionFilter(p int) string {
	return t.Prefix + "." + strconv.Itoa(p) + ".*"
}

// ConsumerName is the durable consumer of partition p.
func (t Topology) ConsumerName(p int) string {
	return t.Stream + "_P" + strconv.Itoa(p)
}

// SplitSubject returns the partition and channel token of a stored subject.
func (t Topology) SplitSubject(subject string) (partition int, token string, err error) {
	rest, ok := strings.CutPrefix(subject, t.Prefix+".")
	if !ok {
		return 0, "", fmt.Errorf("subject %q is not under %s", subject, t.Prefix)
	}
	ptext, token, ok := strings.Cut(rest, ".")
	if !ok || token == "" || strings.Contains(token, ".") {
		return 0, "", fmt.Errorf("subject %q is not %s.<partition>.<token>", subject, t.Prefix)
	}
	p, err := strconv.Atoi(ptext)
	if err != nil || p < 0 || p >= t.Partitions {
		return 0, "", fmt.Errorf("subject %q: partition %q is not 0..%d", subject, ptext, t.Partitions-1)
	}
	return p, token, nil
}

// Partition is the partition of the channel with this token, as the stream's subject
// transform computes it: FNV-1a of the token, mod Partitions.
func (t Topology) Partition(token string) int {
	h := fnv.New32a()
	h.Write([]byte(token))
	return int(h.Sum32() % uint32(t.Partitions))
}

// StoredSubject is the subject the stream stores the events of the channel with
// this token under: <Prefix>.<partition>.<token>.
func (t Topology) StoredSubject(token string) string {
	return t.Prefix + "." + strconv.Itoa(t.Partition(token)) + "." + token
}

// EventSubject is where a CMS publishes an event of the channel with this token.
func (t Topology) EventSubject(token string) string { return t.Prefix + "." + token }

// DLQSubject is where dead letters of the channel with this token go.
func (t Topology) DLQSubject(token string) string { return t.DLQPrefix + "." + token }

// DefaultPartitions is the partition count of a new stream when none is set: enough
// for a few dozen workers, at a cost of one idle pull per partition (docs/scaling.md).
const DefaultPartitions = 32

// StreamPartitions reads the partition count from a stream's subject transform (the n
// of "{{partition(n,1)}}"); ok is false when the stream is not partitioned that way.
func StreamPartitions(cfg jetstream.StreamConfig) (n int, ok bool) {
	if cfg.SubjectTransform == nil {
		return 0, false
	}
	_, rest, ok := strings.Cut(cfg.SubjectTransform.Destination, "{{partition(")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, ",")
	n, err := strconv.Atoi(num)
	return n, ok && err == nil && n > 0
}

// Validate reports what in t no stream can be made of; Ensure calls it before it
// touches the server.
func (t Topology) Validate() error {
	switch {
	case t.Stream == "" || t.Prefix == "" || t.DLQStream == "" || t.DLQPrefix == "":
		return errors.New("topology: Stream, Prefix, DLQStream and DLQPrefix are required")
	case t.Partitions < 0 || t.Replicas < 0:
		return errors.New("topology: Partitions and Replicas must be ≥ 0")
	case t.DuplicateWindow < 0 || t.MaxAge < 0 || t.DLQMaxAge < 0:
		return errors.New("topology: DuplicateWindow, MaxAge and DLQMaxAge must be ≥ 0")
	}
	return nil
}

// Ensure creates the streams or brings them in line with t. Partitions 0 takes the
// existing stream's count, or DefaultPartitions for a new stream, and sets t's. It
// refuses to change the number of partitions of an existing stream: channels would
// move between partitions while their events are in flight, and per-channel order
// would be lost.
func (t *Topology) Ensure(ctx context.Context, js jetstream.JetStream) error {
	if err := t.Validate(); err != nil {
		return err
	}
	var info jetstream.Stream
	err := Retry(ctx, func(ctx context.Context) (err error) {
		info, err = js.Stream(ctx, t.Stream)
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		return fmt.Errorf("look up stream %s: %w", t.Stream, err)
	case t.Partitions == 0:
		if n, ok := StreamPartitions(info.CachedInfo().Config); ok {
			t.Partitions = n
		}
	}
	if t.Partitions == 0 {
		t.Partitions = DefaultPartitions
	}
	events := jetstream.StreamConfig{
		Name:        t.Stream,
		Description: "liverelay: live-page change events from the CMS",
		Subjects:    []string{t.Prefix + ".*"},
		SubjectTransform: &jetstream.SubjectTransformConfig{
			Source:      t.Prefix + ".*",
			Destination: t.transform(),
		},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Replicas:   t.Replicas,
		Duplicates: t.DuplicateWindow,
		MaxAge:     t.MaxAge,
		Discard:    jetstream.DiscardOld,
	}
	if err == nil {
		cur := info.CachedInfo().Config
		if cur.SubjectTransform == nil || cur.SubjectTransform.Destination != events.SubjectTransform.Destination {
			have := "none"
			if cur.SubjectTransform != nil {
				have = cur.SubjectTransform.Destination
			}
			return fmt.Errorf("stream %s partitions its subjects as %q, but LIVE_PARTITIONS=%d and LIVE_SUBJECT_PREFIX=%s want %q: "+
				"the number of partitions is fixed once the stream exists; set LIVE_PARTITIONS to the stream's value, or drain and delete the stream to change it",
				t.Stream, have, t.Partitions, t.Prefix, events.SubjectTransform.Destination)
		}
	}
	if err := ensureStream(ctx, js, events); err != nil {
		return err
	}
	dlq := jetstream.StreamConfig{
		Name:        t.DLQStream,
		Description: "liverelay: events that could not be delivered, with the reason in headers",
		Subjects:    []string{t.DLQPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    t.Replicas,
		Duplicates:  t.DuplicateWindow,
		MaxAge:      t.DLQMaxAge,
	}
	if err := ensureStream(ctx, js, dlq); err != nil {
		return err
	}
	return t.ensureAdvisories(ctx, js)
}

// AdvisoryStream is the stream that keeps the server's max-deliveries advisories for
// the event stream, so that a message JetStream gave up on reaches the dead-letter
// stream even when no worker was listening at that moment.
func (t Topology) AdvisoryStream() string { return t.Stream + "_ADVISORIES" }

// AdvisoryConsumer is the durable consumer, shared by all workers, that moves the
// messages named by those advisories to the dead-letter stream.
func (t Topology) AdvisoryConsumer() string { return "dead-letter-mover" }

func (t Topology) ensureAdvisories(ctx context.Context, js jetstream.JetStream) error {
	cfg := jetstream.StreamConfig{
		Name:        t.AdvisoryStream(),
		Description: "liverelay: max-deliveries advisories of " + t.Stream,
		Subjects:    []string{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + t.Stream + ".*"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    t.Replicas,
		MaxAge:      t.MaxAge,
	}
	return ensureStream(ctx, js, cfg)
}

// EnsureAdvisoryConsumer creates or updates the shared consumer of the advisories.
func (t Topology) EnsureAdvisoryConsumer(ctx context.Context, js jetstream.JetStream, ackWait time.Duration) (jetstream.Consumer, error) {
	err := ensureConsumers(ctx, js, t.AdvisoryStream(), jetstream.ConsumerConfig{
		Durable:       t.AdvisoryConsumer(),
		Description:   "liverelay: moves messages JetStream gave up on to " + t.DLQStream,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: 100,
	})
	if err != nil {
		return nil, err
	}
	var c jetstream.Consumer
	err = Retry(ctx, func(ctx context.Context) (err error) {
		c, err = js.Consumer(ctx, t.AdvisoryStream(), t.AdvisoryConsumer())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", t.AdvisoryConsumer(), err)
	}
	return c, nil
}

// EnsureConsumers creates the durable consumer of every partition, or updates those
// whose settings differ, after reading them all with one request (ensure.go). t's
// partitions must be known (Ensure sets them).
func (t Topology) EnsureConsumers(ctx context.Context, js jetstream.JetStream, cc ConsumerConfig) error {
	switch {
	case t.Stream == "" || t.Prefix == "":
		return errors.New("topology: Stream and Prefix are required")
	case t.Partitions < 1:
		return errors.New("topology: the number of partitions is unknown; Ensure sets it")
	case cc.AckWait <= 0 || cc.PinnedTTL <= 0 || cc.MaxAckPending < 1:
		return errors.New("partition consumers: AckWait and PinnedTTL must be > 0, MaxAckPending ≥ 1")
	}
	perPartition := (cc.MaxAckPending + t.Partitions - 1) / t.Partitions
	cfgs := make([]jetstream.ConsumerConfig, t.Partitions)
	for p := range cfgs {
		cfgs[p] = jetstream.ConsumerConfig{
			Durable:        t.ConsumerName(p),
			Description:    fmt.Sprintf("liverelay: partition %d of %d", p, t.Partitions),
			FilterSubject:  t.PartitionFilter(p),
			DeliverPolicy:  jetstream.DeliverAllPolicy,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        cc.AckWait,
			MaxDeliver:     cc.MaxDeliver,
			MaxAckPending:  perPartition,
			PriorityPolicy: jetstream.PriorityPolicyPinned,
			PriorityGroups: []string{PriorityGroup},
			PinnedTTL:      cc.PinnedTTL,
		}
	}
	return ensureConsumers(ctx, js, t.Stream, cfgs...)
}

// PartitionConsumers returns a handle on every partition's consumer (each looked up
// with a request of its own).
func (t Topology) PartitionConsumers(ctx context.Context, js jetstream.JetStream) ([]jetstream.Consumer, error) {
	out := make([]jetstream.Consumer, 0, t.Partitions)
	for p := range t.Partitions {
		c, err := js.Consumer(ctx, t.Stream, t.ConsumerName(p))
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", t.ConsumerName(p), err)
		}
		out = append(out, c)
	}
	return out, nil
}

// WorkersBucket is the key-value bucket where the workers of this stream announce
// themselves (package group).
func (t Topology) WorkersBucket() string { return t.Stream + "_WORKERS" }
