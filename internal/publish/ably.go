package publish

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ably/ably-go/ably"
	"go.uber.org/zap"
)

// Ably limits and rules, from Ably's documentation (limits, idempotent publishing,
// batch publish, error codes):
//   - one publish carries at most 64 KiB on paid accounts, 16 KiB on free ones,
//     counting the name, data, clientId and extras of all its messages together, not
//     their ids or encodings (40009, HTTP 400);
//   - a client-supplied id is an idempotency key: Ably drops a publish that repeats
//     the key of an earlier one on the channel (within two minutes) and still answers
//     success. The key of an id <base>:<idx> is <base>, and idx must be the message's
//     position in its publish's array (40031): the messages of one publish share one
//     key. So every message here goes in a publish of its own (a channel publish, or
//     a batch spec), with the id <Message.ID>:0 — its key is the relay's id, which
//     the relay makes unique per message;
//   - a batch publish addresses at most 100 channels, in a body of at most 2 MiB; each
//     spec is published on its own, with its own keys;
//   - channel names are not empty, start with neither '[' nor ':', and hold no line
//     break (40010).
const (
	AblyDefaultMaxMessageBytes = 65536 // paid accounts
	AblyFreeMaxMessageBytes    = 16384 // free accounts
	ablyMinMessageBytes        = 1024
	ablyMaxMessageBytesLimit   = 1 << 20

	// ablyEnvelope is what Ably counts of a message besides its data: the event name.
	// The clientId and extras, which Ably counts too, are never sent; the id and the
	// encoding are not counted.
	ablyEnvelope = len(EventName)

	ablyMaxBatch     = 100     // channels of one batch publish request
	ablyMaxBatchBody = 2 << 20 // bytes of one batch publish request body

	ablyEncodingJSON = "json" // the data is JSON text: subscribers get the object
	ablyCodePartial  = 40020  // a batch request where some channels failed
)

// Ably publishes to Ably through its REST API with the official client library,
// ably-go: one channel's messages with RESTChannel.PublishMultiple, several channels'
// in batch publish requests (POST /messages).
//
// Each message goes out alone, as {"id": "<msg.ID>:0", "name": "live-page-update",
// "data": "<the update as JSON text>", "encoding": "json"}: Ably's client libraries
// decode the data for subscribers, so a browser's message.data is the update object.
// The id's idempotency key is the relay's id, so Ably drops a retried message it
// already has, and only that one.
type Ably struct {
	client   *ably.REST
	maxBytes int // per publish, as Ably counts it
	maxData  int
	log      *zap.Logger
}

// NewAbly checks cfg and returns an Ably provider with its own connection pool.
func NewAbly(cfg AblyConfig, log *zap.Logger) (*Ably, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ably configuration: %w", err)
	}
	timeout := cmp.Or(cfg.Timeout, DefaultTimeout)
	maxBytes := cmp.Or(cfg.MaxMessageBytes, AblyDefaultMaxMessageBytes)
	log = log.With(zap.String("provider", "ably"))
	httpClient := NewHTTPClient(timeout)
	httpClient.Transport = &ablyTransport{base: httpClient.Transport}
	opts := []ably.ClientOption{
		ably.WithKey(cfg.APIKey),
		ably.WithHTTPClient(httpClient),
		// JSON rather than msgpack: the batch results are read from the raw answer.
		ably.WithUseBinaryProtocol(false),
		// Every message carries the relay's id: the library must not make its own.
		ably.WithIdempotentRESTPublishing(false),
		ably.WithLogHandler(ablyLogger{log}),
		ably.WithLogLevel(ably.LogWarning),
	}
	if cfg.RESTHost != "" {
		opts = append(opts, ably.WithRESTHost(cfg.RESTHost))
	}
	switch {
	case cfg.TLS && cfg.Port != 0:
		opts = append(opts, ably.WithTLSPort(cfg.Port))
	case !cfg.TLS:
		// Basic auth over plain HTTP: only for a host the operator named explicitly.
		opts = append(opts, ably.WithTLS(false), ably.WithInsecureAllowBasicAuthWithoutTLS())
		if cfg.Port != 0 {
			opts = append(opts, ably.WithPort(cfg.Port))
		}
	}
	client, err := ably.NewREST(opts...)
	if err != nil {
		return nil, fmt.Errorf("ably client: %w", err)
	}
	keyName, _, _ := strings.Cut(cfg.APIKey, ":")
	log.Info("ably provider ready",
		zap.String("key_name", keyName),
		zap.String("rest_host", cfg.RESTHost),
		zap.Int("port", cfg.Port),
		zap.Bool("tls", cfg.TLS),
		zap.Int("max_message_bytes", maxBytes),
		zap.Duration("timeout", timeout))
	if !cfg.TLS {
		log.Warn("publishing to Ably over plain HTTP: the API key travels in clear; use it for tests and local proxies only")
	}
	return &Ably{client: client, maxBytes: maxBytes, maxData: maxBytes - ablyEnvelope, log: log}, nil
}

// Name is the provider name used in errors, logs and DLQ headers.
func (a *Ably) Name() string { return "ably" }

// Limits are the account's message size less the event name, and 100 messages per
// call (the channels of one batch publish).
func (a *Ably) Limits() Limits {
	return Limits{MaxData: a.maxData, MaxBatch: ablyMaxBatch}
}

// CheckChannel reports whether Ably accepts ch as a channel name.
func (a *Ably) CheckChannel(ch string) error {
	return refuse(a.Name(), checkAblyChannel(ch))
}

func checkAblyChannel(ch string) error {
	switch {
	case ch == "":
		return errors.New("channel name is empty")
	case ch[0] == '[':
		return fmt.Errorf("channel name %q starts with '[', which Ably reserves for qualifiers such as [meta]", ch)
	case ch[0] == ':':
		return fmt.Errorf("channel name %q starts with ':', which Ably does not allow", ch)
	case strings.ContainsAny(ch, "\r\n"):
		return fmt.Errorf("channel name %q holds a line break, which Ably does not allow", ch)
	case !utf8.ValidString(ch):
		return fmt.Errorf("channel name %q is not valid UTF-8", ch)
	}
	return nil
}

// check refuses a message Ably would refuse, before any request.
func (a *Ably) check(i int, m Message) error {
	if err := checkAblyChannel(m.Channel); err != nil {
		return refuseMessage(a.Name(), i, ": %w", err)
	}
	switch {
	case ablySize(m) > a.maxBytes:
		return refuseMessage(a.Name(), i, " for channel %q: data of %d bytes is over %d (%d per publish, less %d for the event name)",
			m.Channel, len(m.Data), a.maxData, a.maxBytes, ablyEnvelope)
	case !utf8.Valid(m.Data) || !json.Valid(m.Data):
		// Sent with encoding "json": subscribers would fail to decode it.
		return refuseMessage(a.Name(), i, " for channel %q: data is not JSON", m.Channel)
	}
	return nil
}

// ablySize is the size of one message as Ably counts it against the per-publish
// limit: its name, data, clientId and extras. The messages sent here have no clientId
// and no extras, and the id and the encoding do not count.
func ablySize(m Message) int {
	return ablyEnvelope + len(m.Data)
}

// ablyID is the id of message m as the pos-th message of its publish: <m.ID>:<pos>,
// whose idempotency key is m.ID. Every publish here carries one message, at position
// 0. A message without an id gets none.
func ablyID(m Message, pos int) string {
	if m.ID == "" {
		return ""
	}
	return m.ID + ":" + strconv.Itoa(pos)
}

// Publish sends msgs, one message per publish so that Ably's per-publish limit holds
// for each and each has an idempotency key of its own. One channel's messages go in
// order, each after the previous one was accepted; a failure stops that channel.
// Several channels go in batch publish requests of one message per channel, in rounds
// while a channel has more.
//
// Invalid messages are refused before any request. A failure is an *Error with the
// HTTP status (0 when no answer came back), Ably's error code and the Retry-After;
// when some messages were accepted and others not, a *PartialError gives each one's.
func (a *Ably) Publish(ctx context.Context, msgs []Message) error {
	for i, m := range msgs {
		if err := a.check(i, m); err != nil {
			return err
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	res := newResults(a.Name(), msgs)
	if err := ctx.Err(); err != nil {
		res.failAll(&Error{Provider: a.Name(), Err: fmt.Errorf("publish %d messages: %w", len(msgs), context.Cause(ctx))})
		return res.err()
	}
	if res.channels == 1 {
		for i, m := range msgs {
			if err := a.publishOne(ctx, i, m); err != nil {
				res.fail(i, err)
				break
			}
			res.ok(i)
		}
		return res.err()
	}
	a.publishBatches(ctx, msgs, res)
	return res.err()
}

// publishOne publishes message i to its channel.
func (a *Ably) publishOne(ctx context.Context, i int, m Message) error {
	ex := &exchange{}
	ctx = context.WithValue(ctx, exchangeKey{}, ex)
	// Release the channel object afterwards: the library would keep one per channel
	// name forever.
	ch := a.client.Channels.Get(m.Channel)
	defer a.client.Channels.Release(m.Channel)
	err := ch.PublishMultiple(ctx, []*ably.Message{ablyMessage(m)})
	switch {
	case err == nil:
		return nil
	case ex.status >= 200 && ex.status < 300:
		a.log.Warn("ably accepted a message but its answer was unreadable",
			zap.String("channel", m.Channel), zap.Error(redactURL(err)))
		return nil
	}
	return a.failure(ex, err, fmt.Sprintf("publish message %d to ably channel %q", i+1, m.Channel))
}

// ablyMessage is m as the only message of a channel publish.
func ablyMessage(m Message) *ably.Message {
	return &ably.Message{ID: ablyID(m, 0), Name: EventName, Data: string(m.Data), Encoding: ablyEncodingJSON}
}

// ablyLogger hands ably-go's own log lines (warnings and errors, already filtered by
// level) to zap at debug level: the relay logs each failure once, where it handles it.
type ablyLogger struct{ log *zap.Logger }

func (l ablyLogger) Printf(level ably.LogLevel, format string, v ...any) {
	if ce := l.log.Check(zap.DebugLevel, "ably-go"); ce != nil {
		ce.Write(zap.String("level", level.String()), zap.String("line", fmt.Sprintf(format, v...)))
	}
}
