package publish

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/pusher/pusher-http-go/v5"
	"go.uber.org/zap"
)

// Pusher Channels limits (README.md, "Pointing it at Pusher"). The library checks channel names against
// 200 characters, but the HTTP API refuses more than 164.
const (
	pusherMaxData       = 10240 // bytes of an event's data string, as sent
	pusherMaxBatch      = 10    // events in one batch_events call
	pusherMaxChannelLen = 164

	pusherEncryptedPrefix = "private-encrypted-"
)

var pusherChannelRe = regexp.MustCompile(`^[-a-zA-Z0-9_=@,.;]+$`)

// Pusher publishes to Pusher Channels through batch_events calls of the official
// client library, pusher-http-go.
type Pusher struct {
	// client is a template, copied for each Publish call with its own HTTPClient.
	// Its HTTPClient is set too: the library creates one lazily, with a data race.
	client    pusher.Client
	transport http.RoundTripper // the shared, tuned connection pool
	timeout   time.Duration
	log       *zap.Logger
}

// NewPusher checks cfg and returns a Pusher with its own connection pool.
func NewPusher(cfg PusherConfig, log *zap.Logger) (*Pusher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pusher configuration: %w", err)
	}
	timeout := cmp.Or(cfg.Timeout, DefaultTimeout)
	httpClient := NewHTTPClient(timeout)
	log = log.With(zap.String("provider", "pusher"))
	if !cfg.Secure && cfg.Host == "" {
		log.Warn("publishing to Pusher over plain HTTP; set Secure for production")
	}
	log.Info("pusher provider ready",
		zap.String("app_id", cfg.AppID),
		zap.String("cluster", cfg.Cluster),
		zap.String("host", cfg.Host),
		zap.Bool("secure", cfg.Secure),
		zap.Duration("timeout", timeout))
	return &Pusher{
		client: pusher.Client{
			AppID:      cfg.AppID,
			Key:        cfg.Key,
			Secret:     cfg.Secret,
			Cluster:    cfg.Cluster,
			Host:       cfg.Host,
			Secure:     cfg.Secure,
			HTTPClient: httpClient,
		},
		transport: httpClient.Transport,
		timeout:   timeout,
		log:       log,
	}, nil
}

// Name is the provider name used in errors, logs and DLQ headers.
func (p *Pusher) Name() string { return "pusher" }

// Limits are Pusher's: 10 KB of data per event, 10 events per batch_events call.
func (p *Pusher) Limits() Limits {
	return Limits{MaxData: pusherMaxData, MaxBatch: pusherMaxBatch}
}

// CheckChannel reports whether Pusher accepts ch as a channel name.
func (p *Pusher) CheckChannel(ch string) error {
	return refuse(p.Name(), checkPusherChannel(ch))
}

func checkPusherChannel(ch string) error {
	switch {
	case len(ch) > pusherMaxChannelLen:
		return fmt.Errorf("channel name of %d bytes is longer than %d", len(ch), pusherMaxChannelLen)
	case !pusherChannelRe.MatchString(ch):
		return fmt.Errorf("channel name %q does not match %s", ch, pusherChannelRe)
	case strings.HasPrefix(ch, pusherEncryptedPrefix):
		// The library would refuse it (no encryption master key is configured) with
		// an error that looks like a network failure, retried in vain.
		return fmt.Errorf("channel name %q: end-to-end encrypted channels (%s*) are not supported", ch, pusherEncryptedPrefix)
	}
	return nil
}

// check refuses a message Pusher would refuse, before any request.
func (p *Pusher) check(i int, m Message) error {
	if err := checkPusherChannel(m.Channel); err != nil {
		return refuseMessage(p.Name(), i, ": %w", err)
	}
	if len(m.Data) > pusherMaxData {
		return refuseMessage(p.Name(), i, " for channel %q: data of %d bytes is over %d",
			m.Channel, len(m.Data), pusherMaxData)
	}
	return nil
}

// Publish sends msgs in order, in batch_events calls of at most 10 events, one call
// after the other, and stops at the first failure: the messages of the calls before it
// were accepted, the rest were not sent. Invalid messages are refused before any
// request. A failure is an *Error carrying the HTTP status (0 when no answer came
// back) and the Retry-After the server gave.
func (p *Pusher) Publish(ctx context.Context, msgs []Message) error {
	for i, m := range msgs {
		if err := p.check(i, m); err != nil {
			return err
		}
	}
	var rec response
	client := p.client
	client.HTTPClient = &http.Client{
		Transport: p.callTransport(ctx, &rec),
		Timeout:   p.timeout,
	}
	batch := make([]pusher.Event, 0, min(len(msgs), pusherMaxBatch))
	for start := 0; start < len(msgs); start += pusherMaxBatch {
		chunk := msgs[start:min(start+pusherMaxBatch, len(msgs))]
		if err := ctx.Err(); err != nil {
			return &Error{Provider: p.Name(), Err: p.describe(start, len(msgs), chunk, context.Cause(ctx))}
		}
		batch = batch[:0]
		for _, m := range chunk {
			// []byte goes into the body as it is: neither marshalled again nor copied
			// twice more, as a string would be.
			batch = append(batch, pusher.Event{Channel: m.Channel, Name: EventName, Data: m.Data})
		}
		rec = response{}
		_, err := client.TriggerBatch(batch)
		if err == nil {
			continue
		}
		if rec.status >= 200 && rec.status < 300 {
			// Pusher took the events; only its answer could not be read.
			p.log.Warn("pusher accepted a batch but its answer was unreadable",
				zap.Int("status", rec.status), zap.Int("events", len(chunk)), zap.Error(redactURL(err)))
			continue
		}
		return &Error{
			Provider:   p.Name(),
			Status:     rec.status,
			RetryAfter: parseRetryAfter(rec.retryAfter, time.Now()),
			Err:        p.describe(start, len(msgs), chunk, redactURL(err)),
		}
	}
	return nil
}

// describe wraps err with which messages of a Publish call it concerns.
func (p *Pusher) describe(start, total int, chunk []Message, err error) error {
	return fmt.Errorf("batch_events of messages %d to %d of %d (first channel %q): %w",
		start+1, start+len(chunk), total, chunk[0].Channel, err)
}

// response is what the library does not tell: the status and Retry-After of the last
// answer to a Publish call. Requests of one call are sequential, so it needs no lock.
type response struct {
	status     int
	retryAfter string
}

// callTransport sends the requests of one Publish call through the shared pool,
// records their answers in rec, and aborts them when ctx ends: TriggerBatch takes no
// context, so the context travels with the transport.
func (p *Pusher) callTransport(ctx context.Context, rec *response) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		req, release := withContext(ctx, req)
		resp, err := p.transport.RoundTrip(req)
		if err != nil {
			release()
			return nil, err
		}
		rec.status = resp.StatusCode
		rec.retryAfter = resp.Header.Get("Retry-After")
		resp.Body = &releaseBody{ReadCloser: resp.Body, release: release}
		return resp, nil
	})
}
