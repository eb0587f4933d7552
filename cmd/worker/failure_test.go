package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/fence"
	"github.com/liverelay/liverelay/internal/publish/pushertest"
)

// publishRetrying publishes as a CMS does when NATS is briefly away: the same
// Nats-Msg-Id again until JetStream acknowledges it.
func (h *harness) publishRetrying(ev event.Event) {
	h.t.Helper()
	msg := &nats.Msg{Subject: h.cfg.SubjectPrefix + "." + event.Token(ev.Channel), Data: event.Append(nil, ev), Header: nats.Header{}}
	msg.Header.Set(nats.MsgIdHdr, ev.Channel+":"+strconv.FormatInt(ev.Revision, 10))
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := h.js.PublishMsg(ctx, msg)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("publish: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the CMS's own retry pause; not a test wait
	}
}

// revisionsInOrder checks that, per post, the revisions readers received never go
// back: no update of a channel was published after a newer one. The workload writes
// the revision into each post's HTML as data-rev.
func revisionsInOrder(t *testing.T, events []pushertest.Event) {
	t.Helper()
	rev := regexp.MustCompile(`"content":"<div class=\\"live-post\\" data-post-id=\\"([^"\\]+)\\" data-rev=\\"(\d+)\\"`)
	last := map[string]int64{}
	backwards := 0
	for _, e := range events {
		for _, m := range rev.FindAllStringSubmatch(e.Data, -1) {
			r, _ := strconv.ParseInt(m[2], 10, 64)
			key := e.Channel + "/" + m[1]
			if r < last[key] {
				backwards++
				if backwards < 5 {
					t.Errorf("post %s went back from revision %d to %d", key, last[key], r)
				}
			}
			last[key] = max(last[key], r)
		}
	}
	if len(last) == 0 {
		t.Fatal("no revisions found in the received updates")
	}
}

// TestNATSRestartLosesNothing: the NATS server restarts on the same store while events
// flow; the worker reconnects by itself and readers end with the CMS's pages.
func TestNATSRestartLosesNothing(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			h := newHarness(t)
			// The server forgets its pins when it restarts: each worker must tell
			// that nobody else received its partitions' messages, and carry on.
			h.pusher.SetDelay(20 * time.Millisecond)
			for w := 0; w < workers; w++ {
				h.cfg.WorkerName = fmt.Sprintf("w%d", w)
				h.startWorker()
			}
			gen := smallBlogs(30, 3)
			want := cms{}
			want.send(t, gen, 1500, h.publishRetrying, func(i int, _ event.Event) {
				if i == 600 {
					h.nats.Restart()
				}
			})
			h.waitDelivered(60 * time.Second)
			want.check(t, h.pages())
			revisionsInOrder(t, h.pusher.Events())
		})
	}
}

// TestProviderOutage: Pusher answers 500 to everything for a while. Every event is
// delivered once it recovers, in order per channel, nothing is dead-lettered, and the
// breaker keeps the requests during the outage few.
func TestProviderOutage(t *testing.T) {
	h := newHarness(t)
	h.cfg.Retry.MaxAttempts = 0 // limited by time only, like an operator riding out an outage
	h.cfg.Retry.Max = time.Second
	var down atomic.Bool
	var outageRequests atomic.Int64
	h.pusher.SetScript(func(n int64, _ []pushertest.Event) pushertest.Fault {
		if down.Load() {
			outageRequests.Add(1)
			return pushertest.Fault{Status: 500}
		}
		return pushertest.Fault{}
	})
	h.startWorker()
	gen := smallBlogs(100, 4)
	want := cms{}
	want.send(t, gen, 500, h.publish, nil)
	down.Store(true)
	outageStart := time.Now()
	want.send(t, gen, 3000, h.publish, nil)
	// Hold the outage for 5 s in all.
	time.Sleep(time.Until(outageStart.Add(5 * time.Second)))
	down.Store(false)
	recovered := time.Now()
	outage := recovered.Sub(outageStart)
	h.waitDelivered(60 * time.Second)
	drain := time.Since(recovered)
	want.check(t, h.pages())
	revisionsInOrder(t, h.pusher.Events())
	if n := len(h.deadLetters()); n != 0 {
		t.Fatalf("%d dead letters after an outage the retry policy allows", n)
	}
	if outageRequests.Load() > 100 {
		t.Fatalf("%d requests during a %v outage: the provider was hammered", outageRequests.Load(), outage)
	}
	t.Logf("outage %v: 3000 events over 100 channels published during it, %d provider requests during it; drained %v after recovery",
		outage.Round(time.Millisecond), outageRequests.Load(), drain.Round(time.Millisecond))
}

// TestMain removes the worker binary the process tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.path != "" {
		_ = os.RemoveAll(filepath.Dir(buildOnce.path))
	}
	os.Exit(code)
}

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// newProcessHarness is a harness for a test that runs the worker binary as processes,
// and the binary; with -short the test is skipped, saying what it would run.
func newProcessHarness(t *testing.T, runs string) (bin string, h *harness) {
	t.Helper()
	if testing.Short() {
		t.Skip(runs)
	}
	return workerBinary(t), newHarness(t)
}

// workerBinary builds the worker once per test run.
func workerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "liverelay-test-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "worker")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// TestSIGKILLLosesNothing: a worker process killed with SIGKILL mid-stream loses
// nothing: a new process takes the partitions over and readers end with the CMS's
// pages.
func TestSIGKILLLosesNothing(t *testing.T) {
	bin, h := newProcessHarness(t, "builds and kills a worker process")
	h.pusher.SetDelay(time.Millisecond)
	first := h.startNamed(bin, "first").cmd
	gen := smallBlogs(30, 5)
	want := cms{}
	want.send(t, gen, 2000, h.publish, func(i int, _ event.Event) {
		if i == 1000 {
			// Kill it once it is delivering.
			if err := h.pusher.Wait(context.Background(), func(e []pushertest.Event) bool { return len(e) > 100 }); err != nil {
				t.Fatal(err)
			}
			if err := first.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = first.Wait()
		}
	})
	left, err := h.undelivered()
	if err != nil || left == 0 {
		t.Fatalf("the kill did not land mid-stream: %d undelivered (%v)", left, err)
	}
	h.startNamed(bin, "second")
	h.waitDelivered(90 * time.Second)
	want.check(t, h.pages())
	revisionsInOrder(t, h.pusher.Events())
}

// TestSecondWorkerTakesOver: two in-process workers share the partitions. When one
// stops, the other takes its partitions over and readers end with the CMS's pages.
func TestSecondWorkerTakesOver(t *testing.T) {
	h := newHarness(t)
	stopFirst := h.startWorker()
	h.startWorker()
	gen := smallBlogs(20, 9)
	want := cms{}
	want.send(t, gen, 1200, h.publish, func(i int, _ event.Event) {
		if i == 500 {
			stopFirst()
		}
	})
	h.waitDelivered(90 * time.Second)
	want.check(t, h.pages())
	revisionsInOrder(t, h.pusher.Events())
}

// TestKilledWorkersPublishedRevisionStaysFenced: a worker publishes a post's revision
// 20 and acks it, and is killed before it stores the revision in the fence bucket
// (that happens every few seconds). The CMS's older edit, revision 10, reaches the
// stream afterwards. The next owner must not publish it: it catches up on what the
// dead worker was delivered before it publishes anything of the partition.
func TestKilledWorkersPublishedRevisionStaysFenced(t *testing.T) {
	bin, h := newProcessHarness(t, "builds and kills a worker process")
	h.cfg.Partitions = 2
	post := func(id string, rev int64) event.Event {
		return event.Event{Channel: "fenced-page", Revision: rev, Renders: []event.Render{{ID: id, Show: true,
			Content: fmt.Sprintf(`<div class="live-post" data-post-id="%s" data-rev="%d"><p>%s at %d</p></div>`, id, rev, id, rev)}}}
	}
	received := func(id string, rev int64) func([]pushertest.Event) bool {
		want := fmt.Sprintf(`data-post-id=\"%s\" data-rev=\"%d\"`, id, rev)
		return func(es []pushertest.Event) bool {
			for _, e := range es {
				if strings.Contains(e.Data, want) {
					return true
				}
			}
			return false
		}
	}
	wait := func(cond func([]pushertest.Event) bool, what string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.pusher.Wait(ctx, cond); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	first := h.startNamed(bin, "first")
	// A first event makes the worker take the partition and catch up on it.
	h.publish(post("warm-up", 1))
	wait(received("warm-up", 1), "the first event")
	h.publish(post("p", 20))
	wait(received("p", 20), "revision 20")
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
	kv, err := h.js.KeyValue(context.Background(), "LIVE_REVISIONS")
	if err != nil {
		t.Fatal(err)
	}
	storedBeforeKill := false
	if e, err := kv.Get(context.Background(), fence.Key("fenced-page")); err == nil {
		storedBeforeKill = bytes.Contains(e.Value(), []byte{1, 'p'}) // post "p"'s record
	}

	h.publish(post("p", 10)) // the older edit, late
	second := h.startNamed(bin, "second")
	h.waitDelivered(60 * time.Second)
	if received("p", 10)(h.pusher.Events()) {
		t.Fatal("revision 10 was published after revision 20: the page went back")
	}
	revisionsInOrder(t, h.pusher.Events())
	if read := second.counter(t, "liverelay_fence_catchup_events_total"); read == 0 && !storedBeforeKill {
		t.Fatal("the second worker read no event in its catch-up, yet revision 20 was not stored")
	} else {
		t.Logf("the second worker's catch-up read %.0f events (revision stored before the kill: %v)", read, storedBeforeKill)
	}
}
