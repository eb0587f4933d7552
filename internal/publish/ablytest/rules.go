// What Ably refuses, and how it says so: credentials, channel names, the size of a
// publish, and the error object with Ably's codes.

package ablytest

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// errorInfo is Ably's error object.
type errorInfo struct {
	Message    string `json:"message" codec:"message"`
	Code       int    `json:"code" codec:"code"`
	StatusCode int    `json:"statusCode" codec:"statusCode"`
	Href       string `json:"href,omitempty" codec:"href,omitempty"`
}

func failf(status, code int, format string, args ...any) *errorInfo {
	return &errorInfo{Message: fmt.Sprintf(format, args...), Code: code, StatusCode: status,
		Href: "https://help.ably.io/error/" + strconv.Itoa(code)}
}

// checkBatch is check for one channel of a batch spec, scripted failures included.
func (s *Server) checkBatch(ch string, msgs []Message) (key string, err *errorInfo) {
	if err := checkChannel(ch); err != nil {
		return "", err
	}
	if f, ok := s.channelFault(ch); ok {
		info := f.info()
		return "", &info
	}
	return s.check(ch, msgs)
}

// check enforces Ably's rules on the messages of one publish to one channel, and
// returns the publish's idempotency key ("" when its messages carry no ids).
func (s *Server) check(ch string, msgs []Message) (key string, err *errorInfo) {
	if err := checkChannel(ch); err != nil {
		return "", err
	}
	if len(msgs) == 0 {
		return "", failf(http.StatusBadRequest, CodeInvalidBody, "no messages to publish")
	}
	size := 0
	for _, m := range msgs {
		size += Size(m)
	}
	if max := int(s.maxBytes.Load()); size > max {
		return "", failf(http.StatusBadRequest, CodeTooLarge,
			"Maximum size of messages that can be published at once exceeded (was %d bytes; limit is %d bytes)", size, max)
	}
	return idempotencyKey(msgs)
}

// Size is a message's size as Ably counts it against the per-publish limit: the bytes
// of its name, data (decoded from base64 when so encoded), clientId and extras (as
// JSON). Its id and encoding are not counted.
func Size(m Message) int {
	n := len(m.Name) + len(m.ClientID) + len(m.Extras) + len(m.Data)
	if strings.HasSuffix(m.Encoding, "base64") {
		if b, err := base64.StdEncoding.DecodeString(m.Data); err == nil {
			n += len(b) - len(m.Data)
		}
	}
	return n
}

func checkChannel(ch string) *errorInfo {
	switch {
	case ch == "":
		return failf(http.StatusBadRequest, CodeInvalidChannel, "invalid channel name: empty")
	case ch[0] == '[' || ch[0] == ':':
		return failf(http.StatusBadRequest, CodeInvalidChannel, "invalid channel name %q: cannot start with '[' or ':'", ch)
	case strings.ContainsAny(ch, "\r\n"):
		return failf(http.StatusBadRequest, CodeInvalidChannel, "invalid channel name %q: contains a newline", ch)
	case !utf8.ValidString(ch):
		return failf(http.StatusBadRequest, CodeInvalidChannel, "invalid channel name: not UTF-8")
	}
	return nil
}

// authenticate checks HTTP basic auth with the key, as Ably does for key auth.
func (s *Server) authenticate(r *http.Request) *errorInfo {
	if r.Method != http.MethodPost {
		return failf(http.StatusMethodNotAllowed, 40500, "method %s not allowed", r.Method)
	}
	user, pass, ok := r.BasicAuth()
	switch {
	case !ok:
		return failf(http.StatusUnauthorized, CodeInvalidCreds, "no basic auth credentials given")
	case user != s.keyName:
		return failf(http.StatusUnauthorized, CodeInvalidCreds, "invalid key name %q", user)
	case subtle.ConstantTimeCompare([]byte(pass), []byte(s.secret)) != 1:
		return failf(http.StatusUnauthorized, CodeInvalidCreds, "invalid credentials: key secret mismatch")
	}
	return nil
}
