package broker

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// PublishAsyncTimeout is the async publish timeout of the worker's JetStream context
// (jetstream.WithPublishAsyncTimeout): an async publish whose ack is lost, a stream
// leader that died after storing it, fails after this instead of waiting forever. The
// fence's pipelined writes are such publishes; the timeout is below their round's.
const PublishAsyncTimeout = 10 * time.Second

// Auth is how the client proves itself to NATS. At most one of Creds, NKeyFile, Token
// and User is set; TLS may go with any of them.
type Auth struct {
	Creds    string // path of a .creds file (JWT and nkey seed)
	NKeyFile string // path of an nkey seed file
	Token    string
	User     string
	Password string
	TLSCA    string
	TLSCert  string
	TLSKey   string
}

func (a Auth) options() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case a.Creds != "":
		opts = append(opts, nats.UserCredentials(a.Creds))
	case a.NKeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(a.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nkey seed file %s: %w", a.NKeyFile, err)
		}
		opts = append(opts, opt)
	case a.Token != "":
		opts = append(opts, nats.Token(a.Token))
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	}
	if a.TLSCA != "" {
		opts = append(opts, nats.RootCAs(a.TLSCA))
	}
	if a.TLSCert != "" {
		opts = append(opts, nats.ClientCert(a.TLSCert, a.TLSKey))
	}
	return opts, nil
}

// Connect dials NATS and keeps reconnecting for as long as the connection lives, so a
// restarted server is picked up again without restarting the worker.
func Connect(url, name string, auth Auth, log *zap.Logger) (*nats.Conn, error) {
	opts, err := auth.options()
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("reconnected to NATS", zap.String("url", c.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("NATS asynchronous error", zap.String("subject", subject), zap.Error(err))
		}),
	)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", Redact(url), scrub(err, url))
	}
	return nc, nil
}

// Redact hides the password or token written into each URL of a comma-separated
// list of NATS URLs (with or without a scheme): nats://user:pass@host becomes
// nats://***@host.
func Redact(list string) string {
	urls := strings.Split(list, ",")
	for i, u := range urls {
		urls[i] = redactOne(u)
	}
	return strings.Join(urls, ",")
}

func redactOne(u string) string {
	start := len(u) - len(strings.TrimLeft(u, " \t"))
	if k := strings.Index(u, "://"); k >= 0 {
		start = k + len("://")
	}
	end := len(u)
	if k := strings.IndexByte(u[start:], '/'); k >= 0 {
		end = start + k
	}
	at := strings.LastIndexByte(u[start:end], '@')
	if at < 0 {
		return u
	}
	return u[:start] + "***" + u[start+at:]
}

// scrub returns err with every credential of the URL list masked in its text: the
// client's errors may quote a URL as it was given (a URL that does not parse).
func scrub(err error, list string) error {
	msg := err.Error()
	clean := msg
	for _, u := range strings.Split(list, ",") {
		u = strings.TrimSpace(u)
		if r := redactOne(u); r != u {
			clean = strings.ReplaceAll(clean, u, r)
			if info := userinfo(u); info != "" {
				clean = strings.ReplaceAll(clean, info, "***")
			}
		}
	}
	if clean == msg {
		return err
	}
	return &scrubbed{msg: clean, err: err}
}

// userinfo is what comes before the '@' of a URL's authority.
func userinfo(u string) string {
	r := redactOne(u)
	start := strings.Index(r, "***")
	if start < 0 {
		return ""
	}
	return u[start : len(u)-(len(r)-start-len("***"))]
}

// scrubbed is an error whose text has credentials masked; errors.Is and errors.As
// still see the original.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }
