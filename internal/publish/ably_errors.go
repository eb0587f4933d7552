package publish

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ably/ably-go/ably"
)

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
