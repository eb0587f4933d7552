package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/broker/brokertest"
	"github.com/liverelay/liverelay/internal/broker/topologytest"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/group"
)

// statusJSON runs "worker status --json" against url and decodes its object.
func statusJSON(t *testing.T, url string) statusReport {
	t.Helper()
	code, out, errOut := runWorker(t, "status", "--json", "--nats-url", url)
	if code != 0 {
		t.Fatalf("status --json: exit %d: %s", code, errOut)
	}
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("status --json printed more than one line:\n%s", out)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v in %s", err, out)
	}
	return rep
}

// statusTable is what the human output of "worker status" lists.
type statusTable struct {
	head       string
	owners     map[int]string // partition → OWNER column
	lastActive map[int]string // partition → LAST ACTIVITY column
	workers    map[string]int // worker name → PARTITIONS column
	rows       int            // partition rows, repeats included
}

var agoText = regexp.MustCompile(`^(\d+[smhd])+ ago$`)

// parseStatus reads the two tables of "worker status"; names hold no spaces here.
func parseStatus(t *testing.T, out string) statusTable {
	t.Helper()
	lines := strings.Split(out, "\n")
	st := statusTable{head: lines[0], owners: map[int]string{}, lastActive: map[int]string{}, workers: map[string]int{}}
	section := ""
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			section = ""
		case regexp.MustCompile(`^PARTITION +OWNER +PENDING +ACK PENDING +REDELIVERED +LAST ACTIVITY$`).MatchString(line):
			section = "partitions"
		case regexp.MustCompile(`^WORKER +ID +STARTED +PARTITIONS$`).MatchString(line):
			section = "workers"
		case section == "partitions":
			if len(f) > 2 && strings.HasPrefix(f[2], "(") { // unknown (<pin>)
				f = append([]string{f[0], f[1] + " " + f[2]}, f[3:]...)
			}
			p, err := strconv.Atoi(f[0])
			if err != nil || len(f) < 6 {
				t.Fatalf("partition row %q in\n%s", line, out)
			}
			st.rows++
			st.owners[p] = f[1]
			st.lastActive[p] = strings.Join(f[5:], " ")
		case section == "workers":
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil || len(f) != 5 || !agoText.MatchString(f[2]+" "+f[3]) {
				t.Fatalf("worker row %q in\n%s", line, out)
			}
			st.workers[f[0]] = n
		}
	}
	return st
}

// eventually retries check until it returns "" or the time is up, then fails with its
// last complaint.
func eventually(t *testing.T, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := check()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func liveEvent(channel string, revision int64) event.Event {
	return event.Event{Channel: channel, Renders: []event.Render{{ID: "p1", Show: true, Content: "<p>live</p>"}}, Revision: revision}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// TestStatusWithTwoWorkers: with two workers running, "worker status" lists each
// partition once with the worker the server pinned it to, both workers with the
// partitions they hold, and the depths of the streams; --json says the same.
func TestStatusWithTwoWorkers(t *testing.T) {
	h := newHarness(t)
	start := func(name string) func() {
		hc := *h
		hc.cfg.WorkerName = name
		return hc.startWorker()
	}
	names := []string{"status-a", "status-b"}
	stopA, stopB := start(names[0]), start(names[1])

	// Before any event, every partition is idle: pulled by exactly one of the two.
	eventually(t, 30*time.Second, func() string {
		if _, err := h.undelivered(); err != nil {
			return "the workers have not set the streams up: " + err.Error()
		}
		var why []string
		for _, p := range statusJSON(t, h.nats.URL()).Partitions {
			if p.State != stateIdle || !slices.Contains(names, p.Owner) {
				why = append(why, fmt.Sprintf("partition %d is %s, owner %q", p.Partition, p.State, p.Owner))
			}
		}
		return strings.Join(why, "; ")
	})

	h.publishRaw("bad-1", []byte(`{"v":1,"channel":"bad-1",`), "")
	h.publishRaw("bad-2", []byte(`not json`), "")
	// The server pins a partition to a worker when it delivers a message of it, so
	// status names an owner once a message came after the workers shared the
	// partitions out: events keep coming, as on a live site, until it does.
	rev := time.Now().UnixMicro()
	publishRound := func() {
		for c := range 16 {
			rev++
			h.publish(liveEvent(fmt.Sprintf("status-%d", c), rev))
		}
	}
	var rep statusReport
	eventually(t, 60*time.Second, func() string {
		publishRound()
		h.waitDelivered(30 * time.Second)
		rep = statusJSON(t, h.nats.URL())
		var why []string
		for _, p := range rep.Partitions {
			if p.State != stateOwned {
				why = append(why, fmt.Sprintf("partition %d is %s (pin %q)", p.Partition, p.State, p.Pin))
			}
		}
		if len(rep.Workers) != 2 {
			why = append(why, fmt.Sprintf("%d workers listed", len(rep.Workers)))
		}
		return strings.Join(why, "; ")
	})

	// --json
	if len(rep.Partitions) != h.cfg.Partitions {
		t.Fatalf("%d partitions listed, want %d", len(rep.Partitions), h.cfg.Partitions)
	}
	ids := map[string]string{} // worker id → name
	held := 0
	for _, w := range rep.Workers {
		ids[w.ID] = w.Name
		held += len(w.Partitions)
		if w.Started.IsZero() || time.Since(w.Started) > time.Minute {
			t.Errorf("worker %s started %v", w.Name, w.Started)
		}
		for _, p := range w.Partitions {
			if owner := rep.Partitions[p].OwnerID; owner != w.ID {
				t.Errorf("worker %s lists partition %d, whose owner is %q", w.Name, p, owner)
			}
		}
	}
	if got := slices.Sorted(maps.Values(ids)); !slices.Equal(got, names) {
		t.Errorf("workers %v, want %v", got, names)
	}
	if held != h.cfg.Partitions {
		t.Errorf("the workers hold %d partitions together, want %d", held, h.cfg.Partitions)
	}
	for i, p := range rep.Partitions {
		if p.Partition != i || p.Consumer != h.cfg.Stream+"_P"+strconv.Itoa(i) {
			t.Errorf("row %d is partition %d, consumer %s", i, p.Partition, p.Consumer)
		}
		if !slices.Contains(names, p.Owner) || ids[p.OwnerID] != p.Owner || p.Pin == "" {
			t.Errorf("partition %d: owner %q (%s), pin %q", i, p.Owner, p.OwnerID, p.Pin)
		}
		if p.Pending != 0 || p.AckPending != 0 {
			t.Errorf("partition %d: pending %d, ack pending %d after every event was delivered", i, p.Pending, p.AckPending)
		}
		if p.LastActivity == nil || rep.Time.Sub(*p.LastActivity) > time.Minute || p.LastActivity.After(rep.Time.Add(time.Second)) {
			t.Errorf("partition %d: last activity %v, status taken at %v", i, p.LastActivity, rep.Time)
		}
	}
	dead := streamMsgs(t, h.js, h.cfg.DLQStream)
	if rep.DLQ.Name != h.cfg.DLQStream || rep.DLQ.Messages != 2 || dead != 2 {
		t.Errorf("DLQ %+v; the stream holds %d, want 2", rep.DLQ, dead)
	}
	if n := streamMsgs(t, h.js, h.cfg.Stream); rep.Stream.Name != h.cfg.Stream || rep.Stream.Messages != n || n < 18 {
		t.Errorf("stream %+v; it holds %d", rep.Stream, n)
	}

	// The table says the same.
	code, out, errOut := runWorker(t, "status", "--nats-url", h.nats.URL())
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	t.Logf("worker status:\n%s", out)
	st := parseStatus(t, out)
	want := fmt.Sprintf("%s: %d messages in %d partitions; %s: 2 dead letters", h.cfg.Stream, rep.Stream.Messages, h.cfg.Partitions, h.cfg.DLQStream)
	if st.head != want {
		t.Errorf("first line %q, want %q", st.head, want)
	}
	if st.rows != h.cfg.Partitions || len(st.owners) != h.cfg.Partitions {
		t.Errorf("%d partition rows for %d partitions", st.rows, len(st.owners))
	}
	perWorker := map[string]int{}
	for p := range h.cfg.Partitions {
		perWorker[st.owners[p]]++
		if !slices.Contains(names, st.owners[p]) {
			t.Errorf("partition %d: owner %q", p, st.owners[p])
		}
		if !agoText.MatchString(st.lastActive[p]) {
			t.Errorf("partition %d: last activity %q", p, st.lastActive[p])
		}
	}
	sum := 0
	for _, name := range names {
		n, ok := st.workers[name]
		if !ok {
			t.Errorf("worker %s is not listed", name)
		}
		if n != perWorker[name] {
			t.Errorf("worker %s holds %d partitions, the table shows it owning %d", name, n, perWorker[name])
		}
		sum += n
	}
	if len(st.workers) != 2 || sum != h.cfg.Partitions {
		t.Errorf("workers %v hold %d partitions, want 2 workers holding %d", st.workers, sum, h.cfg.Partitions)
	}

	// Once both stopped, nobody holds anything: they left the group and unpinned.
	stopA()
	stopB()
	eventually(t, 10*time.Second, func() string {
		rep := statusJSON(t, h.nats.URL())
		for _, p := range rep.Partitions {
			if p.State != stateUnpinned || p.Owner != "" {
				return fmt.Sprintf("after the workers stopped, partition %d is %s, owner %q", p.Partition, p.State, p.Owner)
			}
		}
		if len(rep.Workers) != 0 {
			return fmt.Sprintf("after the workers stopped, %d are listed", len(rep.Workers))
		}
		return ""
	})
	code, out, _ = runWorker(t, "status", "--nats-url", h.nats.URL())
	st = parseStatus(t, out)
	if code != 0 || len(st.workers) != 0 || !strings.Contains(out, "\nno live workers\n") {
		t.Errorf("after the workers stopped: exit %d\n%s", code, out)
	}
	for p, owner := range st.owners {
		if owner != "-" {
			t.Errorf("after the workers stopped, partition %d has owner %q", p, owner)
		}
	}
}

// TestStatusWithNoWorkerRunning: status reads JetStream alone. Before any worker
// created the partition consumers, with them but nobody pulling, with a partition
// pinned to a client that is no worker, and with a hostile name in the worker group.
func TestStatusWithNoWorkerRunning(t *testing.T) {
	o := newOpsSetup(t) // the streams, no consumer, no worker group
	o.letters()
	top := broker.Topology{Stream: o.cfg.Stream, Prefix: o.cfg.SubjectPrefix, Partitions: broker.DefaultPartitions}

	rep := statusJSON(t, o.url)
	if len(rep.Partitions) != broker.DefaultPartitions || len(rep.Workers) != 0 || rep.DLQ.Messages != 3 || rep.Stream.Messages != 0 {
		t.Fatalf("fresh streams: %d partitions, %d workers, dlq %+v, stream %+v", len(rep.Partitions), len(rep.Workers), rep.DLQ, rep.Stream)
	}
	for _, p := range rep.Partitions {
		if p.State != stateNoConsumer || p.Owner != "" || p.LastActivity != nil {
			t.Fatalf("before any worker: %+v", p)
		}
	}
	code, out, errOut := o.run("status")
	st := parseStatus(t, out)
	if code != 0 || st.rows != broker.DefaultPartitions || len(st.workers) != 0 || !strings.Contains(out, "32 partitions have no consumer") {
		t.Fatalf("before any worker: exit %d, %s\n%s", code, errOut, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := top.EnsureConsumers(ctx, o.js, broker.ConsumerConfig{AckWait: time.Minute, MaxDeliver: 5, MaxAckPending: 1000, PinnedTTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = o.run("status")
	t.Logf("worker status, no worker:\n%s", out)
	st = parseStatus(t, out)
	if code != 0 || st.rows != broker.DefaultPartitions || len(st.workers) != 0 || !strings.Contains(out, "\nno live workers\n") ||
		st.head != "LIVE_EVENTS: 0 messages in 32 partitions; LIVE_DLQ: 3 dead letters" {
		t.Fatalf("exit %d, %s\n%s", code, errOut, out)
	}
	for p := range broker.DefaultPartitions {
		if st.owners[p] != "-" || st.lastActive[p] != "-" {
			t.Errorf("partition %d: owner %q, last activity %q; want - and -", p, st.owners[p], st.lastActive[p])
		}
	}

	// A client that is no worker pulls a partition in the relay group: the server pins
	// the partition to it, and no worker announces the pin.
	ack, err := o.js.Publish(ctx, o.cfg.SubjectPrefix+".status-x", event.Append(nil, liveEvent("status-x", 1)))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := o.js.Stream(ctx, o.cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stored.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	part, _, err := top.SplitSubject(msg.Subject)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := o.js.Consumer(ctx, o.cfg.Stream, top.ConsumerName(part))
	if err != nil {
		t.Fatal(err)
	}
	topologytest.Pull(t, cons, 1, 5*time.Second) // left unacked
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pin := ""
	for _, g := range info.PriorityGroups {
		if g.Group == broker.PriorityGroup {
			pin = g.PinnedClientID
		}
	}
	if pin == "" {
		t.Fatalf("partition %d is not pinned after a fetch in group %s: %+v", part, broker.PriorityGroup, info.PriorityGroups)
	}
	rep = statusJSON(t, o.url)
	if p := rep.Partitions[part]; p.State != stateUnknown || p.Pin != pin || p.Owner != "" || p.AckPending != 1 || p.LastActivity == nil {
		t.Errorf("partition %d pinned to no worker: %+v", part, p)
	}
	if rep.Stream.Messages != 1 {
		t.Errorf("stream %+v, want 1 message", rep.Stream)
	}
	_, out, _ = o.run("status")
	st = parseStatus(t, out)
	if st.owners[part] != "unknown ("+pin+")" || !agoText.MatchString(st.lastActive[part]) {
		t.Errorf("partition %d: owner %q, last activity %q\n%s", part, st.owners[part], st.lastActive[part], out)
	}

	// A worker that announces the pin owns the partition. Its name is whatever the
	// group bucket holds: status escapes it.
	kv, err := group.OpenBucket(ctx, o.js, top.WorkersBucket(), 1, group.Timing{Heartbeat: time.Second, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	evil := "evil" + hostile
	entry, err := json.Marshal(group.Member{ID: "W1", Name: evil, Started: time.Now().Add(-90 * time.Second), Pins: map[int]string{part: pin}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "W1", entry); err != nil {
		t.Fatal(err)
	}
	// One that still announces an old pin of the partition, and of another, holds nothing.
	other := (part + 1) % broker.DefaultPartitions
	entry, err = json.Marshal(group.Member{ID: "W2", Name: "a-stale", Started: time.Now(), Pins: map[int]string{part: "OLD", other: "OLD"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "W2", entry); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"status", "--json"}} {
		code, out, errOut := o.run(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if c, bad := terminalUnsafe(out); bad {
			t.Errorf("%v: holds %q unescaped:\n%q", args, c, out)
		}
		if !strings.Contains(out, `\u001b`) || !strings.Contains(out, `\u202e`) {
			t.Errorf("%v: the escapes are not shown escaped:\n%q", args, out)
		}
	}
	rep = statusJSON(t, o.url)
	want := strings.ToValidUTF8(evil, "\ufffd")
	if len(rep.Workers) != 2 || rep.Workers[1].Name != want || !slices.Equal(rep.Workers[1].Partitions, []int{part}) ||
		rep.Workers[0].Name != "a-stale" || len(rep.Workers[0].Partitions) != 0 ||
		rep.Partitions[part].State != stateOwned || rep.Partitions[part].Owner != want || rep.Partitions[part].OwnerID != "W1" ||
		rep.Partitions[other].State != stateUnpinned {
		t.Errorf("a member announcing the pin: workers %s, partition %s", strconv.Quote(fmt.Sprintf("%+v", rep.Workers)), strconv.Quote(fmt.Sprintf("%+v", rep.Partitions[part])))
	}
}

// TestStatusJSONFieldNames: the names docs/operations.md documents.
func TestStatusJSONFieldNames(t *testing.T) {
	last := time.Date(2026, 11, 29, 15, 0, 0, 0, time.UTC)
	rep := statusReport{Partitions: []partitionStatus{{LastActivity: &last}}, Workers: []workerStatus{{Partitions: []int{0}}}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	keys := func(v any) string { return strings.Join(slices.Sorted(maps.Keys(v.(map[string]any))), ",") }
	for what, want := range map[string]string{
		"report":    "dlq,partitions,stream,time,workers",
		"stream":    "messages,name",
		"partition": "ack_pending,consumer,last_activity,owner,owner_id,partition,pending,pin,redelivered,state",
		"worker":    "id,name,partitions,started",
	} {
		var v any
		switch what {
		case "report":
			v = got
		case "stream":
			v = got["stream"]
		case "partition":
			v = got["partitions"].([]any)[0]
		case "worker":
			v = got["workers"].([]any)[0]
		}
		if k := keys(v); k != want {
			t.Errorf("%s fields %s, want %s", what, k, want)
		}
	}
}

func TestStatusFailures(t *testing.T) {
	srv := brokertest.Start(t) // no streams
	code, _, errOut := runWorker(t, "status", "--nats-url", srv.URL())
	if code != 1 || !strings.Contains(errOut, "stream LIVE_EVENTS does not exist") {
		t.Errorf("no stream: exit %d, %q", code, errOut)
	}
	o := newOpsSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := o.js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--stream", "OTHER"}, "stream OTHER has no partition transform"},
		{[]string{"--dlq-stream", "NO_DLQ"}, "stream NO_DLQ does not exist"},
	} {
		code, out, errOut := o.run(append([]string{"status"}, tt.args...)...)
		if code != 1 || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
	code, _, errOut = runWorker(t, "status", "--nats-url", "nats://127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "--nats") {
		t.Errorf("unreachable: exit %d, %q", code, errOut)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--json=perhaps"}, `invalid argument "perhaps" for "--json"`},
		{[]string{"--timeout", "0s"}, "--timeout"},
		{[]string{"--colour"}, "unknown flag: --colour"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		code, _, errOut := runWorker(t, append([]string{"status", "--nats-url", "nats://127.0.0.1:1"}, tt.args...)...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, want 2 naming %q; stderr %q", tt.args, code, tt.want, errOut)
		}
	}
	if code, _, errOut := runWorker(t, "status", "--help"); code != 0 {
		t.Errorf("--help: exit %d, %s", code, errOut)
	}
}
