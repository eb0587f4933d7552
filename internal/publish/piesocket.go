package publish

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// PieSocket limits. Channel ids are documented ("max 30 characters", letters, digits,
// '_' and '-'); the message size is not, so the default is a conservative 16 KiB,
// above Pusher's 10 KB, that an operator may raise once PieSocket confirms more.
const (
	PieSocketDefaultMaxMessageBytes = 16384
	pieSocketMaxMessageBytesLimit   = 1 << 20
	pieSocketMaxChannelLen          = 30
	// One request carries one message: batching saves nothing, and with one message
	// per call the relay's concurrent calls keep channels independent.
	pieSocketMaxBatch = 1

	pieSocketAnswerLimit = 64 << 10 // bytes of an answer read for its error message
)

var pieSocketChannelRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// PieSocket publishes to PieSocket channels through its HTTP publish API, one request
// per message: POST {"key", "secret", "channelId", "message": <the update object>}.
// The update is embedded as it is, not as a string: PieSocket sends the message to
// the channel's WebSocket clients as JSON text, and Wagtail Live's PieSocket client
// passes JSON.parse(event.data) to process_updates. PieSocket has no event names.
type PieSocket struct {
	client   *http.Client
	url      string
	key      string
	secret   string
	maxBytes int
	log      *zap.Logger
}

// NewPieSocket checks cfg and returns a PieSocket provider with its own connection
// pool.
func NewPieSocket(cfg PieSocketConfig, log *zap.Logger) (*PieSocket, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("piesocket configuration: %w", err)
	}
	timeout := cmp.Or(cfg.Timeout, DefaultTimeout)
	maxBytes := cmp.Or(cfg.MaxMessageBytes, PieSocketDefaultMaxMessageBytes)
	endpoint := cfg.APIURL
	if endpoint == "" {
		endpoint = "https://" + cfg.ClusterID + ".piesocket.com/api/publish"
	}
	u, err := pieSocketURL(endpoint)
	if err != nil {
		return nil, fmt.Errorf("piesocket configuration: %w", err)
	}
	log = log.With(zap.String("provider", "piesocket"))
	if u.Scheme != "https" {
		log.Warn("publishing to PieSocket over plain HTTP: the secret travels in clear; use it for tests and local proxies only")
	}
	log.Info("piesocket provider ready",
		zap.String("url", u.Redacted()),
		zap.Int("max_message_bytes", maxBytes),
		zap.Duration("timeout", timeout))
	return &PieSocket{
		client:   NewHTTPClient(timeout),
		url:      endpoint,
		key:      cfg.APIKey,
		secret:   cfg.Secret,
		maxBytes: maxBytes,
		log:      log,
	}, nil
}

// Name is the provider name used in errors, logs and DLQ headers.
func (p *PieSocket) Name() string { return "piesocket" }

// Limits are the configured message size (16 KiB by default) and one message per call.
func (p *PieSocket) Limits() Limits {
	return Limits{MaxData: p.maxBytes, MaxBatch: pieSocketMaxBatch}
}

// CheckChannel reports whether PieSocket accepts ch as a channel id.
func (p *PieSocket) CheckChannel(ch string) error {
	return refuse(p.Name(), checkPieSocketChannel(ch))
}

func checkPieSocketChannel(ch string) error {
	if len(ch) > pieSocketMaxChannelLen || !pieSocketChannelRe.MatchString(ch) {
		return fmt.Errorf("channel id %q: PieSocket channel ids are 1 to %d characters of A-Z, a-z, 0-9, '_' and '-'",
			ch, pieSocketMaxChannelLen)
	}
	return nil
}

// check refuses a message PieSocket would refuse, before any request.
func (p *PieSocket) check(i int, m Message) error {
	if err := checkPieSocketChannel(m.Channel); err != nil {
		return refuseMessage(p.Name(), i, ": %w", err)
	}
	switch {
	case len(m.Data) > p.maxBytes:
		return refuseMessage(p.Name(), i, " for channel %q: data of %d bytes is over %d",
			m.Channel, len(m.Data), p.maxBytes)
	case !utf8.Valid(m.Data) || !json.Valid(m.Data):
		// It is embedded in the request as it is.
		return refuseMessage(p.Name(), i, " for channel %q: data is not JSON", m.Channel)
	}
	return nil
}

// Publish sends msgs in order, one request each, and stops at the first failure:
// the later messages of that channel are not sent, nor are the others', which get a
// retryable error saying so. Invalid messages are refused before any request. A
// failure is an *Error with the HTTP status (0 when no answer came back) and the
// Retry-After; when some messages were accepted, a *PartialError gives each one's.
func (p *PieSocket) Publish(ctx context.Context, msgs []Message) error {
	for i, m := range msgs {
		if err := p.check(i, m); err != nil {
			return err
		}
	}
	res := newResults(p.Name(), msgs)
	for i, m := range msgs {
		if err := ctx.Err(); err != nil {
			res.failAll(&Error{Provider: p.Name(), Err: fmt.Errorf("publish message %d of %d: %w", i+1, len(msgs), context.Cause(ctx))})
			break
		}
		if err := p.publishOne(ctx, i, m); err != nil {
			res.fail(i, err)
			res.notSent(err)
			break
		}
		res.ok(i)
	}
	return res.err()
}

// publishOne sends message i.
func (p *PieSocket) publishOne(ctx context.Context, i int, m Message) *Error {
	what := fmt.Sprintf("publish message %d to piesocket channel %q", i+1, m.Channel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(p.body(m)))
	if err != nil {
		return &Error{Provider: p.Name(), Err: fmt.Errorf("%s: %w", what, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return &Error{Provider: p.Name(), Err: fmt.Errorf("%s: %w", what, redactURL(err))}
	}
	defer resp.Body.Close()
	answer, rerr := io.ReadAll(io.LimitReader(resp.Body, pieSocketAnswerLimit))
	// Drain the rest, so that the connection goes back to the pool.
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	text := answerText(p.redact(pieSocketMessage(answer)))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if rerr == nil && pieSocketRefusal(answer) {
			// Classified as permanent, as its status says nothing else.
			return &Error{Provider: p.Name(), Status: resp.StatusCode, Err: fmt.Errorf("%s: refused: %s", what, text)}
		}
		return nil
	}
	return &Error{
		Provider:   p.Name(),
		Status:     resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Err:        fmt.Errorf("%s: %s", what, text),
	}
}

// body encodes the request by hand: the update goes in as it is (check made sure it
// is JSON), where encoding/json would compact it and escape its HTML.
func (p *PieSocket) body(m Message) []byte {
	b := make([]byte, 0, len(m.Data)+len(p.key)+len(p.secret)+len(m.Channel)+64)
	b = append(b, `{"key":`...)
	b = appendJSONString(b, p.key)
	b = append(b, `,"secret":`...)
	b = appendJSONString(b, p.secret)
	b = append(b, `,"channelId":`...)
	b = appendJSONString(b, m.Channel)
	b = append(b, `,"message":`...)
	b = append(b, m.Data...)
	return append(b, '}')
}

func appendJSONString(dst []byte, s string) []byte {
	enc, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("encode a string: %v", err))
	}
	return append(dst, enc...)
}

// pieSocketRefusal reports whether an answer with a success status still says no:
// {"success": false} or a non-empty "error". PieSocket documents no error format.
func pieSocketRefusal(answer []byte) bool {
	var a struct {
		Success *bool           `json:"success"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(answer, &a) != nil {
		return false
	}
	switch strings.TrimSpace(string(a.Error)) {
	case "", "null", `""`, "false":
		return a.Success != nil && !*a.Success
	}
	return true
}

// pieSocketMessage is the error message of a JSON answer ({"error": "..."} or
// {"message": "..."}), else the answer itself.
func pieSocketMessage(answer []byte) string {
	var a struct {
		Error   any `json:"error"`
		Message any `json:"message"`
	}
	if json.Unmarshal(answer, &a) == nil {
		for _, m := range []any{a.Error, a.Message} {
			if s, ok := m.(string); ok && s != "" {
				return s
			}
		}
	}
	return string(answer)
}

// answerText is an answer shortened for an error message.
func answerText(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	s = strings.ToValidUTF8(s, "")
	if s == "" {
		return "empty answer"
	}
	return s
}

// redact removes the secret from text a server sent back, which might echo it, as
// it is or JSON-escaped (by Go, or by encoders that also escape '/').
func (p *PieSocket) redact(s string) string {
	s = strings.ReplaceAll(s, p.secret, "[secret]")
	esc := string(appendJSONString(nil, p.secret))
	esc = esc[1 : len(esc)-1]
	for _, v := range []string{esc, strings.ReplaceAll(esc, "/", `\/`)} {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[secret]")
		}
	}
	return s
}
