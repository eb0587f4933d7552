package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
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

// ablyKeyRe matches an API key as Ably shows it: appId.keyId:secret.
var ablyKeyRe = regexp.MustCompile(`^[^.:\s]+\.[^.:\s]+:\S+$`)

// AblyConfig configures the Ably provider.
type AblyConfig struct {
	APIKey string // ABLY_API_KEY, appId.keyId:secret; never logged
	// RESTHost replaces Ably's REST host (ABLY_REST_HOST): a proxy, or a fake in tests.
	// Empty means Ably's own hosts, with the library's fallback hosts.
	RESTHost string
	Port     int  // ABLY_PORT; zero means 443 with TLS, 80 without
	TLS      bool // ABLY_TLS; the configuration defaults it to true
	// MaxMessageBytes is the account's message size limit (ABLY_MAX_MESSAGE_BYTES):
	// zero means AblyDefaultMaxMessageBytes; free accounts have AblyFreeMaxMessageBytes.
	MaxMessageBytes int
	// Timeout bounds one HTTP request; zero means DefaultTimeout.
	Timeout time.Duration
}

// Validate reports every setting at fault, by its environment name. It never shows
// the key's secret.
func (c AblyConfig) Validate() error {
	var errs []error
	switch {
	case c.APIKey == "":
		errs = append(errs, badSetting("ABLY_API_KEY", "required when LIVE_PROVIDER=ably"))
	case !ablyKeyRe.MatchString(c.APIKey):
		errs = append(errs, badSetting("ABLY_API_KEY", "want appId.keyId:secret, the key as Ably's dashboard shows it"))
	}
	if c.RESTHost != "" {
		if err := checkHostPort(c.RESTHost); err != nil {
			errs = append(errs, badSetting("ABLY_REST_HOST", "%v", err))
		} else if strings.Contains(c.RESTHost, ":") {
			errs = append(errs, badSetting("ABLY_REST_HOST", "give the host alone and the port in ABLY_PORT"))
		}
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, badSetting("ABLY_PORT", "want 1 to 65535, or 0 for the default"))
	}
	if !c.TLS && c.RESTHost == "" {
		errs = append(errs, badSetting("ABLY_TLS", "false needs ABLY_REST_HOST: the key must not travel in clear to Ably's own hosts"))
	}
	if c.MaxMessageBytes != 0 && (c.MaxMessageBytes < ablyMinMessageBytes || c.MaxMessageBytes > ablyMaxMessageBytesLimit) {
		errs = append(errs, badSetting("ABLY_MAX_MESSAGE_BYTES", "want %d to %d (%d on paid accounts, %d on free ones)",
			ablyMinMessageBytes, ablyMaxMessageBytesLimit, AblyDefaultMaxMessageBytes, AblyFreeMaxMessageBytes))
	}
	if c.Timeout < 0 {
		errs = append(errs, badSetting("LIVE_PROVIDER_TIMEOUT", "timeout %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

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
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	maxBytes := cfg.MaxMessageBytes
	if maxBytes == 0 {
		maxBytes = AblyDefaultMaxMessageBytes
	}
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
	if err := checkAblyChannel(ch); err != nil {
		return a.reject(err)
	}
	return nil
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

func (a *Ably) reject(err error) *Error {
	return &Error{Provider: a.Name(), Rejected: true, Err: err}
}

// check refuses a message Ably would refuse, before any request.
func (a *Ably) check(i int, m Message) error {
	if err := checkAblyChannel(m.Channel); err != nil {
		return a.reject(fmt.Errorf("message %d: %w", i+1, err))
	}
	switch {
	case ablySize(m) > a.maxBytes:
		return a.reject(fmt.Errorf("message %d for channel %q: data of %d bytes is over %d (%d per publish, less %d for the event name)",
			i+1, m.Channel, len(m.Data), a.maxData, a.maxBytes, ablyEnvelope))
	case !utf8.Valid(m.Data) || !json.Valid(m.Data):
		// Sent with encoding "json": subscribers would fail to decode it.
		return a.reject(fmt.Errorf("message %d for channel %q: data is not JSON", i+1, m.Channel))
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

// failure describes a failed request from what the library returned and what the
// transport saw of the answer.
func (a *Ably) failure(ex *exchange, err error, what string) *Error {
	e := &Error{Provider: a.Name(), Status: ex.status, RetryAfter: parseRetryAfter(ex.retryAfter, time.Now())}
	if ex.status == 0 {
		var info *ably.ErrorInfo
		if errors.As(err, &info) {
			// Refused by the library itself, before any request.
			e.Status, e.Code = info.StatusCode, int(info.Code)
		}
		e.Err = fmt.Errorf("%s: %w", what, redactURL(err))
		return e
	}
	info := parseAblyError(ex.body)
	if info == nil {
		var lib *ably.ErrorInfo
		if errors.As(err, &lib) {
			info = &ablyErrorInfo{Message: lib.Message(), Code: int(lib.Code), StatusCode: lib.StatusCode}
		} else {
			info = &ablyErrorInfo{Message: err.Error()}
		}
	}
	e.Code = info.Code
	e.Err = fmt.Errorf("%s: %s", what, info)
	return e
}

// publishBatches sends the messages of several channels in batch publish requests of
// one message per channel: a channel's next message goes in the next round, once the
// previous one was accepted. A request that fails as a whole stops the call.
func (a *Ably) publishBatches(ctx context.Context, msgs []Message, res *results) {
	var order []string
	queue := map[string][]int{}
	for i, m := range msgs {
		if _, ok := queue[m.Channel]; !ok {
			order = append(order, m.Channel)
		}
		queue[m.Channel] = append(queue[m.Channel], i)
	}
	for {
		var round []int
		for _, ch := range order {
			if q := queue[ch]; len(q) > 0 && res.failed[ch] == nil {
				round = append(round, q[0])
				queue[ch] = q[1:]
			}
		}
		if len(round) == 0 {
			return
		}
		for len(round) > 0 {
			if err := ctx.Err(); err != nil {
				res.failAll(&Error{Provider: a.Name(), Err: fmt.Errorf("batch publish: %w", context.Cause(ctx))})
				return
			}
			n, body := ablyBatchBody(msgs, round)
			if err := a.batchRequest(ctx, msgs, round[:n], body, res); err != nil {
				res.notSent(err)
				return
			}
			round = round[n:]
		}
	}
}

// ablyBatchSpec is one element of a batch publish request.
type ablyBatchSpec struct {
	Channels []string           `json:"channels"`
	Messages []ablyBatchMessage `json:"messages"`
}

type ablyBatchMessage struct {
	ID       string `json:"id,omitempty"`
	Name     string `json:"name"`
	Data     string `json:"data"`
	Encoding string `json:"encoding"`
}

// ablyBatchBody encodes the specs of the first n messages of idx that fit one request:
// at most 100 channels and 2 MiB of body, as encoded (HTML escapes included).
func ablyBatchBody(msgs []Message, idx []int) (n int, body []byte) {
	body = append(body, '[')
	for n < len(idx) && n < ablyMaxBatch {
		m := msgs[idx[n]]
		spec, err := json.Marshal([]ablyBatchSpec{{
			Channels: []string{m.Channel},
			Messages: []ablyBatchMessage{{ID: ablyID(m, 0), Name: EventName, Data: string(m.Data), Encoding: ablyEncodingJSON}},
		}})
		if err != nil {
			panic(fmt.Sprintf("encode a batch spec of strings: %v", err))
		}
		spec = spec[1 : len(spec)-1] // the spec without the array around it
		if n > 0 && len(body)+1+len(spec)+1 > ablyMaxBatchBody {
			break
		}
		if n > 0 {
			body = append(body, ',')
		}
		body = append(body, spec...)
		n++
	}
	return n, append(body, ']')
}

// batchRequest sends one batch publish request for the messages idx and records each
// one's outcome. It returns the error of a request that failed as a whole, whose
// messages it has recorded as failed.
func (a *Ably) batchRequest(ctx context.Context, msgs []Message, idx []int, body []byte, res *results) *Error {
	ex := &exchange{}
	rctx := context.WithValue(ctx, exchangeKey{}, ex)
	what := fmt.Sprintf("batch publish to %d ably channels (first %q)", len(idx), msgs[idx[0]].Channel)
	page, err := a.client.Request("post", "/messages", ably.RequestWithBody(json.RawMessage(body))).Pages(rctx)
	if err != nil {
		// No answer: the library returns an HTTP error status as a page, not an error.
		e := a.failure(ex, err, what)
		for _, i := range idx {
			res.fail(i, e)
		}
		return e
	}
	page.Next(rctx) // reads the answer to its end, into the exchange
	status := page.StatusCode()
	retryAfter := parseRetryAfter(ex.retryAfter, time.Now())
	answer, perr := parseBatchAnswer(status, ex.body)
	switch {
	case perr == nil:
	case status >= 200 && status < 300:
		a.log.Warn("ably accepted a batch but its answer was unreadable",
			zap.Int("status", status), zap.Int("channels", len(idx)), zap.Error(perr))
		for _, i := range idx {
			res.ok(i)
		}
		return nil
	default:
		info := parseAblyError(ex.body)
		if info == nil {
			info = &ablyErrorInfo{Message: http.StatusText(status)}
		}
		e := &Error{Provider: a.Name(), Status: status, Code: info.Code, RetryAfter: retryAfter,
			Err: fmt.Errorf("%s: %s", what, info)}
		if info.Code == ablyCodePartial {
			// Some channels failed, but the answer does not say which: the ids make
			// sending them all again harmless.
			e.Status = 0
		}
		for _, i := range idx {
			res.fail(i, e)
		}
		return e
	}
	for _, i := range idx {
		ch := msgs[i].Channel
		info, found := answer[ch]
		switch {
		case !found:
			res.fail(i, &Error{Provider: a.Name(), RetryAfter: retryAfter,
				Err: fmt.Errorf("batch publish to ably channel %q: the answer (HTTP %d) has no result for it", ch, status)})
		case info == nil:
			res.ok(i)
		default:
			res.fail(i, &Error{Provider: a.Name(), Status: info.status(), Code: info.Code, RetryAfter: retryAfter,
				Err: fmt.Errorf("batch publish to ably channel %q: %s", ch, info)})
		}
	}
	return nil
}

// ablyBatchResult is one element of a batch publish answer: one channel's result
// ({"channel", "messageId"} or {"channel", "error"}), or, as protocol version 2
// answers, one spec's {"successCount", "failureCount", "results": [...]}.
type ablyBatchResult struct {
	Channel string            `json:"channel"`
	Error   *ablyErrorInfo    `json:"error"`
	Results []ablyBatchResult `json:"results"`
}

// parseBatchAnswer reads the per-channel results of a batch publish answer: the body
// of a success, or the batchResponse of a 400 with code 40020. A channel maps to nil
// when it was published to, to its error otherwise.
func parseBatchAnswer(status int, body []byte) (map[string]*ablyErrorInfo, error) {
	results := json.RawMessage(body)
	if status < 200 || status >= 300 {
		var answer struct {
			Error         *ablyErrorInfo  `json:"error"`
			BatchResponse json.RawMessage `json:"batchResponse"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return nil, fmt.Errorf("decode the answer: %w", err)
		}
		if status != http.StatusBadRequest || answer.Error == nil || answer.Error.Code != ablyCodePartial || len(answer.BatchResponse) == 0 {
			return nil, errors.New("not a partial batch failure")
		}
		results = answer.BatchResponse
	}
	var list []ablyBatchResult
	trimmed := strings.TrimSpace(string(results))
	if strings.HasPrefix(trimmed, "{") {
		list = make([]ablyBatchResult, 1)
		if err := json.Unmarshal(results, &list[0]); err != nil {
			return nil, fmt.Errorf("decode the batch results: %w", err)
		}
	} else if err := json.Unmarshal(results, &list); err != nil {
		return nil, fmt.Errorf("decode the batch results: %w", err)
	}
	out := map[string]*ablyErrorInfo{}
	var add func([]ablyBatchResult)
	add = func(list []ablyBatchResult) {
		for _, r := range list {
			switch {
			case r.Results != nil:
				add(r.Results)
			case r.Channel != "":
				out[r.Channel] = r.Error
			}
		}
	}
	add(list)
	return out, nil
}

// ablyErrorInfo is Ably's error object.
type ablyErrorInfo struct {
	Message    string `json:"message"`
	Code       int    `json:"code"`
	StatusCode int    `json:"statusCode"`
}

func (e *ablyErrorInfo) String() string {
	msg := strings.TrimSpace(e.Message)
	if len(msg) > 300 {
		msg = strings.ToValidUTF8(msg[:300], "") + "…"
	}
	if msg == "" {
		msg = "no message"
	}
	if e.Code == 0 {
		return msg
	}
	return fmt.Sprintf("%s (Ably error %d)", msg, e.Code)
}

// status is the HTTP status the error stands for: its statusCode, else the one its
// code is built on (40160 is a 401).
func (e *ablyErrorInfo) status() int {
	switch {
	case e.StatusCode != 0:
		return e.StatusCode
	case e.Code >= 10000 && e.Code < 60000:
		return e.Code / 100
	}
	return 0
}

// parseAblyError reads {"error": {...}} from an answer, nil when it holds none.
func parseAblyError(body []byte) *ablyErrorInfo {
	var answer struct {
		Error *ablyErrorInfo `json:"error"`
	}
	if json.Unmarshal(body, &answer) != nil || answer.Error == nil {
		return nil
	}
	return answer.Error
}

// ablyLogger hands ably-go's own log lines (warnings and errors, already filtered by
// level) to zap at debug level: the relay logs each failure once, where it handles it.
type ablyLogger struct{ log *zap.Logger }

func (l ablyLogger) Printf(level ably.LogLevel, format string, v ...any) {
	if ce := l.log.Check(zap.DebugLevel, "ably-go"); ce != nil {
		ce.Write(zap.String("level", level.String()), zap.String("line", fmt.Sprintf(format, v...)))
	}
}

// exchangeKey carries an *exchange in a request's context.
type exchangeKey struct{}

// exchange is the last answer to the request of one publish: ably-go returns errors
// without the HTTP status or Retry-After, and reads a batch's per-channel results from
// an error body it then discards.
type exchange struct {
	status     int
	retryAfter string
	body       []byte // the answer's first exchangeBodyLimit bytes
}

const exchangeBodyLimit = 1 << 20 // bytes of an answer kept for reading

// ablyTransport sends ably-go's requests through the tuned pool. ably-go v1.2.22
// closes answers without reading them, which makes Go drop the connection (a new
// TCP and TLS handshake per publish): closing an answer here first drains what is
// left of it. It also records each answer in the request's exchange.
type ablyTransport struct {
	base http.RoundTripper
}

func (t *ablyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ex, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if ex != nil {
		*ex = exchange{} // a fallback host's answer replaces the previous one
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if ex != nil {
		ex.status = resp.StatusCode
		ex.retryAfter = resp.Header.Get("Retry-After")
	}
	resp.Body = &drainBody{ReadCloser: resp.Body, ex: ex}
	return resp, nil
}

// drainBody keeps what is read in the exchange and drains the rest on Close.
type drainBody struct {
	io.ReadCloser
	ex     *exchange
	closed bool
}

func (b *drainBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.ex != nil && n > 0 && len(b.ex.body) < exchangeBodyLimit {
		b.ex.body = append(b.ex.body, p[:min(n, exchangeBodyLimit-len(b.ex.body))]...)
	}
	return n, err
}

func (b *drainBody) Close() error {
	if !b.closed {
		b.closed = true
		// Through Read, so that the exchange keeps the whole answer.
		_, _ = io.CopyN(io.Discard, b, drainLimit)
	}
	return b.ReadCloser.Close()
}
