package providertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

func TestRecorderWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRecorder[int]("pusher", "events")
		done := make(chan error, 1)
		go func() { done <- r.Wait(t.Context(), func(items []int) bool { return len(items) >= 3 }) }()

		r.Add(1, 2)
		r.Add() // wakes nobody
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Wait returned %v with 2 items", err)
		default:
		}
		r.Add(3)
		if err := <-done; err != nil {
			t.Fatalf("Wait: %v", err)
		}

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := r.Wait(ctx, func(items []int) bool { return len(items) > 3 })
		want := "pushertest: condition not met with 3 events: context deadline exceeded"
		if err == nil || err.Error() != want || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait past its deadline: %v, want %q", err, want)
		}
	})
}

func TestRecorderAll(t *testing.T) {
	r := NewRecorder[string]("ably", "messages")
	if got := r.All(); len(got) != 0 {
		t.Fatalf("All of an empty recorder: %v", got)
	}
	r.Add("a", "b")
	got := r.All()
	got[0] = "changed"
	if again := r.All(); fmt.Sprint(again) != "[a b]" {
		t.Errorf("All after changing a copy: %v", again)
	}
}

// fatalTB records what Fatalf says instead of ending the test.
type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }

func TestRecorderWaitN(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRecorder[int]("piesocket", "messages")
		go func() {
			time.Sleep(time.Second)
			r.Add(1, 2)
		}()
		if got := r.WaitN(t, 2, time.Minute); fmt.Sprint(got) != "[1 2]" {
			t.Errorf("WaitN: %v", got)
		}

		tb := &fatalTB{TB: t}
		start := time.Now()
		got := r.WaitN(tb, 3, 5*time.Second)
		want := "waiting for 3 piesocket messages: piesockettest: condition not met with 2 messages: context deadline exceeded"
		if tb.fatal != want || len(got) != 2 || time.Since(start) != 5*time.Second {
			t.Errorf("WaitN for too many: %v after %v, fatal %q, want %q", got, time.Since(start), tb.fatal, want)
		}
	})
}
