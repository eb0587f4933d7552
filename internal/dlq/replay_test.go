package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/broker/topologytest"
	"github.com/liverelay/liverelay/internal/event"
)

func (f *fixture) replayer(cfg ReplayConfig) *Replayer {
	f.t.Helper()
	if cfg.EventsStream == "" {
		cfg.EventsStream = f.top.Stream
	}
	if cfg.EventsPrefix == "" {
		cfg.EventsPrefix = f.top.Prefix
	}
	r, err := NewReplayer(f.js, f.r, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// events returns every message of the event stream.
func (f *fixture) events() []*jetstream.RawStreamMsg {
	f.t.Helper()
	ctx := testCtx(f.t)
	s := topologytest.Stream(f.t, f.js, f.top.Stream)
	st := s.CachedInfo().State
	var out []*jetstream.RawStreamMsg
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// writeLetters writes letters from to to-1 of channel a: post p<i>, revision i+1,
// dead-lettered as permanent.
func (f *fixture) writeLetters(from, to int) {
	f.t.Helper()
	for i := from; i < to; i++ {
		f.write(validLetter("a", fmt.Sprint("p", i), "<p>x</p>", int64(i+1), ReasonPermanent))
	}
}

// checkStored fails the test unless the event stream holds events events and the
// dead-letter stream letters letters.
func (f *fixture) checkStored(events, letters int) {
	f.t.Helper()
	if n := len(f.events()); n != events {
		f.t.Fatalf("%d events stored, want %d", n, events)
	}
	if left := f.letterSeqs(); len(left) != letters {
		f.t.Fatalf("letters %v left, want %d", left, letters)
	}
}

func (f *fixture) letterSeqs() []uint64 {
	f.t.Helper()
	es, err := f.r.List(testCtx(f.t), Filter{})
	if err != nil {
		f.t.Fatal(err)
	}
	return seqsOf(es)
}

func TestReplayRoundTrip(t *testing.T) {
	f := newFixture(t)
	a := f.write(validLetter("a", "p1", "<p>1</p>", 10, ReasonPermanent))
	b := f.write(validLetter("news.uk/live", "p2", "<p>2</p>", 20, ReasonExhausted))
	c := f.write(validLetter("a", "p3", "<p>3</p>", 30, ReasonExhausted))

	var outcomes []Outcome
	sum, err := f.replayer(ReplayConfig{}).Replay(testCtx(t), Filter{}, func(o Outcome) { outcomes = append(outcomes, o) })
	if err != nil {
		t.Fatal(err)
	}
	if sum != (Summary{Replayed: 3}) {
		t.Fatalf("summary %+v", sum)
	}
	if len(outcomes) != 3 {
		t.Fatalf("%d outcomes", len(outcomes))
	}
	evs := f.events()
	if len(evs) != 3 {
		t.Fatalf("%d events in %s, want 3", len(evs), f.top.Stream)
	}
	for i, want := range []Letter{a, b, c} {
		m, o := evs[i], outcomes[i]
		dlqSeq := uint64(i + 1)
		token := event.Token(want.Channel)
		if o.Action != ActionReplayed || o.Entry.Seq != dlqSeq || o.Subject != "live.events."+token || o.EventSeq != m.Sequence || o.Err != nil {
			t.Errorf("outcome %d: %+v", i, o)
		}
		// The stream stores live.events.<partition>.<token>.
		if _, gotToken, err := f.top.SplitSubject(m.Subject); err != nil || gotToken != token {
			t.Errorf("event %d stored as %q, want the token %q (%v)", i, m.Subject, token, err)
		}
		if got := m.Header.Get(nats.MsgIdHdr); got != "replay:LIVE_DLQ:"+strconv.FormatUint(dlqSeq, 10) {
			t.Errorf("event %d: Nats-Msg-Id %q", i, got)
		}
		if got := m.Header.Get(HeaderReplayOf); got != strconv.FormatUint(dlqSeq, 10) {
			t.Errorf("event %d: %s %q", i, HeaderReplayOf, got)
		}
		if string(m.Data) != string(want.Body) {
			t.Errorf("event %d: body %s, want %s", i, m.Data, want.Body)
		}
	}
	if left := f.letterSeqs(); len(left) != 0 {
		t.Fatalf("letters %v are still in the DLQ", left)
	}
}

// A letter leaves the DLQ only once JetStream acknowledged its re-publish into the
// event stream.
func TestReplayKeepsLettersThatWereNotStored(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	f.write(validLetter("a", "p1", "<p>1</p>", 10, ReasonPermanent))
	f.write(validLetter("b", "p2", "<p>2</p>", 20, ReasonPermanent))

	t.Run("no stream captures the subject", func(t *testing.T) {
		r := f.replayer(ReplayConfig{EventsPrefix: "nowhere.events", Timeout: 2 * time.Second})
		var errs []error
		sum, err := r.Replay(ctx, Filter{}, func(o Outcome) { errs = append(errs, o.Err) })
		if err != nil {
			t.Fatal(err)
		}
		if sum != (Summary{Failed: 2}) || len(errs) != 2 || errs[0] == nil || !strings.Contains(errs[0].Error(), "nowhere.events.a") {
			t.Fatalf("summary %+v, errors %v", sum, errs)
		}
		if left := f.letterSeqs(); len(left) != 2 {
			t.Fatalf("letters left %v, want both", left)
		}
	})
	t.Run("stored by another stream", func(t *testing.T) {
		if _, err := f.js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err != nil {
			t.Fatal(err)
		}
		r := f.replayer(ReplayConfig{EventsPrefix: "other"})
		var errs []error
		sum, err := r.Replay(ctx, Filter{Channel: "a"}, func(o Outcome) { errs = append(errs, o.Err) })
		if err != nil {
			t.Fatal(err)
		}
		if sum != (Summary{Failed: 1}) || errs[0] == nil || !strings.Contains(errs[0].Error(), "OTHER") {
			t.Fatalf("summary %+v, errors %v", sum, errs)
		}
		if left := f.letterSeqs(); len(left) != 2 {
			t.Fatalf("letters left %v, want both", left)
		}
	})
	if n := len(f.events()); n != 0 {
		t.Fatalf("%d events reached %s", n, f.top.Stream)
	}
}

// Running replay again, including after one that stopped between the re-publish and
// the delete, stores each letter once.
func TestReplayTwicePublishesOnce(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	f.writeLetters(0, 4)
	// A replay that stopped after re-publishing letter 2 without deleting it.
	m := &nats.Msg{Subject: "live.events.a", Header: nats.Header{}}
	m.Header.Set(nats.MsgIdHdr, MsgID("LIVE_DLQ", 2))
	e2, err := f.r.Get(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	m.Data = e2.Body
	if _, err := f.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}

	r := f.replayer(ReplayConfig{})
	var dup []uint64
	sum, err := r.Replay(ctx, Filter{}, func(o Outcome) {
		if o.Action == ActionDuplicate {
			dup = append(dup, o.Entry.Seq)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum != (Summary{Replayed: 3, Duplicates: 1}) || len(dup) != 1 || dup[0] != 2 {
		t.Fatalf("first replay: %+v, duplicates %v", sum, dup)
	}
	sum, err = r.Replay(ctx, Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum != (Summary{}) {
		t.Fatalf("second replay: %+v", sum)
	}
	f.checkStored(4, 0)
}

// Replays running at once store each letter once, and none fails on a letter another
// one deleted.
func TestConcurrentReplaysPublishOnce(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	const letters, replays = 150, 4
	for i := range letters {
		f.write(validLetter(fmt.Sprint("ch", i%7), fmt.Sprint("p", i), "<p>x</p>", int64(i+1), ReasonPermanent))
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total Summary
		seen  = map[uint64]int{}
	)
	for range replays {
		wg.Go(func() {
			_, js := f.srv.Connect() // a separate operator
			r, err := NewReplayer(js, NewReader(js, "LIVE_DLQ", "live.dlq"), ReplayConfig{EventsStream: "LIVE_EVENTS", EventsPrefix: "live.events"})
			if err != nil {
				t.Error(err)
				return
			}
			sum, err := r.Replay(ctx, Filter{}, func(o Outcome) {
				if o.Action == ActionReplayed {
					mu.Lock()
					seen[o.Entry.Seq]++
					mu.Unlock()
				}
				if o.Err != nil {
					t.Errorf("letter %d: %v", o.Entry.Seq, o.Err)
				}
			})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total.Replayed += sum.Replayed
			total.Duplicates += sum.Duplicates
			total.Failed += sum.Failed
			mu.Unlock()
		})
	}
	wg.Wait()
	if total.Replayed != letters || total.Failed != 0 {
		t.Fatalf("together: %+v, want %d replayed", total, letters)
	}
	for seq, n := range seen {
		if n != 1 {
			t.Errorf("letter %d replayed %d times", seq, n)
		}
	}
	f.checkStored(letters, 0)
	t.Logf("%d replays at once: %d letters replayed, %d duplicates detected", replays, total.Replayed, total.Duplicates)
}

func TestReplayDryRunChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.write(validLetter("a", "p1", "<p>1</p>", 10, ReasonPermanent))
	f.write(Letter{Token: "a", Body: []byte("{oops"), Reason: event.ReasonMalformed})
	f.write(validLetter("b", "p2", "<p>2</p>", 20, ReasonPermanent))
	var got []string
	sum, err := f.replayer(ReplayConfig{DryRun: true}).Replay(testCtx(t), Filter{}, func(o Outcome) {
		got = append(got, fmt.Sprintf("%d %s %s", o.Entry.Seq, o.Action, o.Subject))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1 would-replay live.events.a", "2 skipped-invalid ", "3 would-replay live.events.b"}
	if sum != (Summary{WouldReplay: 2, SkippedInvalid: 1}) || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("summary %+v, outcomes %q", sum, got)
	}
	f.checkStored(0, 3) // a dry run stores nothing and deletes nothing
}

func TestReplayInvalidLetters(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	f.write(Letter{Token: "x", Body: []byte(`{"v":2,"channel":"x"}`), Reason: event.ReasonVersion})
	f.write(validLetter("x", "p1", "<p>1</p>", 10, ReasonPermanent))
	f.write(Letter{Body: []byte("\x00\xff"), Reason: event.ReasonMalformed}) // _unknown

	var skipped []error
	sum, err := f.replayer(ReplayConfig{}).Replay(ctx, Filter{}, func(o Outcome) {
		if o.Action == ActionSkipped {
			skipped = append(skipped, o.Err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var decErr *event.Error
	if sum != (Summary{Replayed: 1, SkippedInvalid: 2}) || len(skipped) != 2 || !errors.As(skipped[0], &decErr) || decErr.Reason != event.ReasonVersion {
		t.Fatalf("default replay: %+v, skipped %v", sum, skipped)
	}
	if left := f.letterSeqs(); len(left) != 2 || left[0] != 1 || left[1] != 3 {
		t.Fatalf("letters left %v, want the invalid ones 1 and 3", left)
	}

	var subjects []string
	sum, err = f.replayer(ReplayConfig{IncludeInvalid: true}).Replay(ctx, Filter{}, func(o Outcome) { subjects = append(subjects, o.Subject) })
	if err != nil {
		t.Fatal(err)
	}
	if sum != (Summary{Replayed: 2}) || strings.Join(subjects, " ") != "live.events.x live.events._unknown" {
		t.Fatalf("with invalid letters: %+v to %v", sum, subjects)
	}
	evs := f.events()
	if len(evs) != 3 || string(evs[2].Data) != "\x00\xff" {
		t.Fatalf("events %d", len(evs))
	}
}

func TestReplayFilters(t *testing.T) {
	f := newFixture(t)
	f.write(validLetter("a", "p1", "<p>1</p>", 10, ReasonPermanent))
	f.write(validLetter("b", "p2", "<p>2</p>", 20, ReasonExhausted))
	f.write(validLetter("a", "p3", "<p>3</p>", 30, ReasonExhausted))
	f.write(validLetter("a", "p4", "<p>4</p>", 40, ReasonExhausted))
	sum, err := f.replayer(ReplayConfig{}).Replay(testCtx(t), Filter{Channel: "a", Reason: ReasonExhausted, Limit: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum != (Summary{Replayed: 1}) {
		t.Fatalf("summary %+v", sum)
	}
	if left := f.letterSeqs(); fmt.Sprint(left) != "[1 2 4]" {
		t.Fatalf("letters left %v, want [1 2 4]", left)
	}
}

func TestReplayConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  ReplayConfig
		ok   bool
	}{
		{"complete", ReplayConfig{EventsStream: "LIVE_EVENTS", EventsPrefix: "live.events"}, true},
		{"no stream", ReplayConfig{EventsPrefix: "live.events"}, false},
		{"no prefix", ReplayConfig{EventsStream: "LIVE_EVENTS"}, false},
		{"negative timeout", ReplayConfig{EventsStream: "LIVE_EVENTS", EventsPrefix: "live.events", Timeout: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReplayer(nil, nil, tt.cfg)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrReplayConfig)) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestReplayStopsOnCancel(t *testing.T) {
	f := newFixture(t)
	f.writeLetters(0, 3)
	ctx, cancel := context.WithCancel(testCtx(t))
	sum, err := f.replayer(ReplayConfig{}).Replay(ctx, Filter{}, func(Outcome) { cancel() })
	if !errors.Is(err, context.Canceled) || sum.Replayed != 1 {
		t.Fatalf("after cancel: %+v, %v", sum, err)
	}
	if left := f.letterSeqs(); len(left) != 2 {
		t.Fatalf("letters left %v", left)
	}
}
