// Package ingest is liverelay's Pusher-compatible HTTP ingest: a CMS that publishes
// with one of Pusher's server libraries (Wagtail Live's Pusher publisher) points it
// at liverelay instead of at Pusher. Each triggered event is checked as Pusher checks
// it, turned into a version 1 change event, and stored in JetStream, with a revision
// stamped per channel when the CMS sent none, before the request is answered 200.
package ingest

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/liverelay/liverelay/internal/pushersign"
)

// TimestampWindow is how far a request's auth_timestamp may be from the server's
// clock, in either direction: Pusher's 600 seconds. A captured request is refused once
// it is older.
const TimestampWindow = 600 * time.Second

// Credentials are the app id, key and secret the CMS's Pusher client is given.
type Credentials struct {
	AppID  string
	Key    string
	Secret string
}

// refusal is an answer other than 200: a status and a text body like Pusher's.
type refusal struct {
	status int
	msg    string
}

func (r *refusal) Error() string { return strconv.Itoa(r.status) + " " + r.msg }

func refuse(status int, format string, args ...any) *refusal {
	return &refusal{status: status, msg: fmt.Sprintf(format, args...)}
}

// authenticate checks a request's signature as Pusher does: auth_key, auth_version
// 1.0, auth_timestamp within TimestampWindow of now, and auth_signature, the hex
// HMAC-SHA256 with the secret of the string to sign, compared in constant time. The
// signature covers body_md5, so this runs before the body is read: a request not
// signed with the secret never gets its body read. It returns the body_md5 the
// request signed, for checkBody.
func (c Credentials) authenticate(method, path, rawQuery string, now time.Time) (bodyMD5 string, rf *refusal) {
	q, err := pushersign.ParseQuery(rawQuery)
	if err != nil {
		return "", refuse(http.StatusBadRequest, "Invalid query string: %v", err)
	}
	if q["auth_key"] == "" {
		return "", refuse(http.StatusUnauthorized, "Missing auth_key")
	}
	if !hmac.Equal([]byte(q["auth_key"]), []byte(c.Key)) {
		return "", refuse(http.StatusUnauthorized, "Unknown auth_key")
	}
	if q["auth_version"] != "1.0" {
		return "", refuse(http.StatusUnauthorized, "Invalid auth_version: want 1.0")
	}
	ts, err := strconv.ParseInt(q["auth_timestamp"], 10, 64)
	if err != nil {
		return "", refuse(http.StatusUnauthorized, "Invalid auth_timestamp: want seconds since 1970")
	}
	if skew := now.Sub(time.Unix(ts, 0)).Abs(); skew > TimestampWindow {
		return "", refuse(http.StatusUnauthorized, "Timestamp expired: Given timestamp (%s) not within %.0fs of server time (%s)",
			time.Unix(ts, 0).UTC().Format(time.RFC3339), TimestampWindow.Seconds(), now.UTC().Format(time.RFC3339))
	}
	toSign := pushersign.StringToSign(method, path, q)
	if !hmac.Equal([]byte(q["auth_signature"]), []byte(pushersign.Sign(c.Secret, toSign))) {
		return "", refuse(http.StatusUnauthorized, "Invalid signature: you should have sent HmacSHA256Hex(%q, your_secret_key), but you sent %q",
			toSign, q["auth_signature"])
	}
	return q["body_md5"], nil
}

// checkBody requires body_md5, the signed hex MD5 of the body, whenever there is a
// body (or a body_md5).
func checkBody(bodyMD5 string, body []byte) *refusal {
	if len(body) == 0 && bodyMD5 == "" {
		return nil
	}
	sum := md5.Sum(body)
	if !hmac.Equal([]byte(bodyMD5), []byte(hex.EncodeToString(sum[:]))) {
		return refuse(http.StatusUnauthorized, "Invalid body_md5: it must be the hex MD5 of the request body")
	}
	return nil
}
