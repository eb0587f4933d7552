// Package pushersign is the signature of Pusher's HTTP API (auth_signature), as a
// Pusher server checks it: the query read as Pusher reads it, the string a client
// signs, and the HMAC. The ingest checks the requests of a CMS's Pusher client with
// it, and the fake Pusher (pushertest) those of liverelay's publisher.
package pushersign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// ParseQuery decodes a query with one value per key, keys lower-cased as Pusher
// signs them; values are signed unescaped. A key given twice is an error.
func ParseQuery(raw string) (map[string]string, error) {
	q := map[string]string{}
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		rk, rv, _ := strings.Cut(part, "=")
		k, err := url.QueryUnescape(rk)
		if err != nil {
			return nil, err
		}
		v, err := url.QueryUnescape(rv)
		if err != nil {
			return nil, err
		}
		k = strings.ToLower(k)
		if _, dup := q[k]; dup {
			return nil, fmt.Errorf("parameter %q given twice", k)
		}
		q[k] = v
	}
	return q, nil
}

// StringToSign is what a Pusher client signs: the method, the path and the query
// parameters but auth_signature, sorted by key, as key=value joined by '&', values
// not escaped.
func StringToSign(method, path string, query map[string]string) string {
	keys := make([]string, 0, len(query))
	for k := range query {
		if k != "auth_signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(method + "\n" + path + "\n")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k + "=" + query[k])
	}
	return b.String()
}

// Sign is the hex HMAC-SHA256 of toSign with secret, as auth_signature carries it.
func Sign(secret, toSign string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(toSign))
	return hex.EncodeToString(mac.Sum(nil))
}
