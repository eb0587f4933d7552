package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/workload"
)

// load publishes the workload's events as a CMS does (subject <prefix>.<token>,
// Nats-Msg-Id <channel>:<revision>), at rate events per second (0: as fast as
// JetStream takes them), for d. It returns how many were published; progress, when not
// nil, follows that count as the load goes, and rec, when not nil, records every event
// for the provider-message floor.
func load(ctx context.Context, js jetstream.JetStream, prefix string, gen *workload.Generator, rate int, d time.Duration, progress *atomic.Int64, rec *floorRecorder) (int, error) {
	const tick = time.Millisecond
	end := time.Now().Add(d)
	start := time.Now()
	sent := 0
	var buf []byte
	publish := func() error {
		ev := gen.Next()
		ev.EmittedAt = time.Now()
		buf = event.Append(buf[:0], ev)
		msg := &nats.Msg{Subject: prefix + "." + event.Token(ev.Channel), Data: append([]byte(nil), buf...), Header: nats.Header{}}
		msg.Header.Set(nats.MsgIdHdr, ev.Channel+":"+strconv.FormatInt(ev.Revision, 10))
		for {
			_, err := js.PublishMsgAsync(msg)
			if err == nil {
				sent++
				rec.add(ev)
				if progress != nil {
					progress.Store(int64(sent))
				}
				return nil
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return fmt.Errorf("publish: %w", err)
			}
			// The window of outstanding publishes is full: wait for it to drain.
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for time.Now().Before(end) {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		if rate <= 0 {
			for i := 0; i < 256; i++ {
				if err := publish(); err != nil {
					return sent, err
				}
			}
			continue
		}
		due := int(time.Since(start).Seconds() * float64(rate))
		for sent < due {
			if err := publish(); err != nil {
				return sent, err
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return sent, ctx.Err()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return sent, ctx.Err()
	case <-time.After(time.Minute):
		return sent, errors.New("publishes not acknowledged within a minute")
	}
	return sent, nil
}
