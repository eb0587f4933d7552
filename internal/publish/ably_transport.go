package publish

import (
	"io"
	"net/http"
)

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
