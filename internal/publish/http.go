package publish

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Connection pool sizes for provider clients. http.DefaultTransport keeps 2 idle
// connections per host: with tens of publishes in flight, every other request opens a
// new TCP+TLS connection, which halves the throughput.
const (
	maxIdleConnsPerHost = 64
	maxIdleConns        = 256
	idleConnTimeout     = 90 * time.Second

	// dialTimeout and tlsHandshakeTimeout bound connection set-up on their own, so a
	// black-holed address fails fast even when the request timeout is generous.
	dialTimeout         = 5 * time.Second
	tlsHandshakeTimeout = 5 * time.Second
	keepAlive           = 30 * time.Second
)

// DefaultTimeout bounds one provider request when the configuration gives none.
const DefaultTimeout = 5 * time.Second

// NewHTTPClient returns an HTTP client for one provider, with its own connection pool
// sized for concurrent publishes. timeout bounds a whole request, reading the answer
// included; zero or less means DefaultTimeout.
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{
		Transport: gatedTransport{base: newTransport(timeout)},
		Timeout:   timeout,
	}
}

// gateKey carries, in a request's context, the check made right before it is sent.
type gateKey struct{}

// WithGate returns a context in which every provider request first calls check, as
// late as possible before it is sent: an error stops it unsent. The relay uses it so
// that a worker paused between preparing a call and sending it does not send it after
// its partition moved on.
func WithGate(ctx context.Context, check func() error) context.Context {
	return context.WithValue(ctx, gateKey{}, check)
}

// gatedTransport runs a request's gate (WithGate) before sending it.
type gatedTransport struct{ base http.RoundTripper }

func (t gatedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if check, ok := req.Context().Value(gateKey{}).(func() error); ok {
		if err := check(); err != nil {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return nil, err
		}
	}
	return t.base.RoundTrip(req)
}

// newTransport returns a connection pool tuned for many concurrent requests to one
// host. Connection set-up never takes longer than the request timeout.
func newTransport(timeout time.Duration) *http.Transport {
	dialer := &net.Dialer{
		Timeout:   min(dialTimeout, timeout),
		KeepAlive: keepAlive,
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          maxIdleConns,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   min(tlsHandshakeTimeout, timeout),
		ExpectContinueTimeout: time.Second,
	}
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). It returns 0 when the header is absent, malformed or in the past.
func parseRetryAfter(value string, now time.Time) time.Duration {
	if value == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > maxRetryAfterSeconds {
			secs = maxRetryAfterSeconds
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil {
		if d := at.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// maxRetryAfterSeconds caps a Retry-After so that a silly value cannot overflow a
// time.Duration; a retry policy applies its own, smaller cap.
const maxRetryAfterSeconds = 24 * 60 * 60

// redactURL strips the query from the URL of a failed request before it reaches an
// error message: provider clients sign requests in the query (Pusher's auth_key and
// auth_signature), and logs have no use for them. The error chain is kept, so
// errors.Is(err, context.DeadlineExceeded) and net.Error still work.
func redactURL(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		uerr.URL, _, _ = strings.Cut(uerr.URL, "?")
	}
	return err
}

const drainLimit = 256 << 10 // bytes of an unread answer drained to keep the connection

// checkHostPort accepts "host" or "host:port", without scheme, path or credentials.
func checkHostPort(hostport string) error {
	// The value is never quoted back: a rejected one may hold credentials.
	if strings.Contains(hostport, "@") {
		return errors.New("want host or host:port without credentials")
	}
	u, err := url.Parse("http://" + hostport)
	if err != nil || u.Host != hostport || u.Hostname() == "" {
		return errors.New("want host or host:port (no scheme, no path)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("the port must be 1 to 65535")
		}
	}
	return nil
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// withContext returns req bound to both its own context (which carries the
// http.Client timeout) and ctx. release frees the binding once the answer is read.
func withContext(ctx context.Context, req *http.Request) (*http.Request, func()) {
	if ctx.Done() == nil {
		return req, func() {}
	}
	rctx, cancel := context.WithCancelCause(req.Context())
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	return req.WithContext(rctx), func() {
		stop()
		cancel(nil)
	}
}

// releaseBody releases the request context when the library closes the answer.
type releaseBody struct {
	io.ReadCloser
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
