package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ably/ably-go/ably"
	"go.uber.org/zap"
)

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
