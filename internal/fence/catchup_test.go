package fence

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/broker/brokertest"
)

// countingHistory counts the catch-ups that read a partition's progress.
type countingHistory struct {
	History
	reads int
}

func (h *countingHistory) Progress(ctx context.Context, partition int) (acked, delivered uint64, err error) {
	h.reads++
	return h.History.Progress(ctx, partition)
}

// A catch-up that cannot read the stream (the server is away) makes the update wait,
// without spending a retry attempt, and the updates behind it do not each try again at
// once; once the server is back, the next try catches up.
func TestCatchUpThatCannotReadMakesUpdatesWait(t *testing.T) {
	r := newRig(t)
	r.emit("p", 10)
	r.deliver(1) // delivered to a worker that died: there is something to catch up on
	hist := &countingHistory{History: r.hist}
	cfg := r.config()
	cfg.History = hist
	f := r.openWith(cfg)
	f.Acquire(0)
	r.srv.Shutdown()

	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := f.Check(ctx, 0, 1, update(10, []string{"p"}))
		return err
	}
	err := check()
	var w interface{ Wait() bool }
	if !errors.As(err, &w) || !w.Wait() {
		t.Fatalf("a catch-up with the server away: %v, want an error that makes the update wait", err)
	}
	reads := hist.reads
	if err := check(); !errors.As(err, &w) {
		t.Fatalf("the next check at once: %v, want the same wait", err)
	}
	if hist.reads != reads {
		t.Errorf("the next check read the history again at once (%d reads, then %d)", reads, hist.reads)
	}

	r.srv.Restart()
	time.Sleep(catchUpRetry)
	brokertest.WaitFor(t, 20*time.Second, "the catch-up to succeed once the server is back", func() bool { return check() == nil })
}
