package providertest

import (
	"fmt"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Build returns what newP builds from cfg, after edit (when not nil) changed it, with
// a logger that writes to t. It fails t, naming the constructor, when newP fails.
func Build[C, P any](t testing.TB, name string, newP func(C, *zap.Logger) (P, error), cfg C, edit func(*C)) P {
	t.Helper()
	if edit != nil {
		edit(&cfg)
	}
	p, err := newP(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// Concurrently runs work(0) to work(workers-1) at the same time, waits for them all
// and fails t with the first error one returned. Call it from the test's goroutine.
func Concurrently(t testing.TB, workers int, work func(w int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			if err := work(w); err != nil {
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err, ok := <-errs; ok {
		t.Fatal(err)
	}
}
