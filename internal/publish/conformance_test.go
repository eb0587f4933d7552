package publish_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liverelay/liverelay/internal/browsertest"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/merge"
	"github.com/liverelay/liverelay/internal/publish"
	"github.com/liverelay/liverelay/internal/publish/ablytest"
	"github.com/liverelay/liverelay/internal/publish/piesockettest"
	"github.com/liverelay/liverelay/internal/publish/providertest"
	"github.com/liverelay/liverelay/internal/publish/pushertest"
	"github.com/liverelay/liverelay/internal/retry"
)

// provider is what the relay calls (relay.Provider, declared again here: the relay
// package imports this one).
type provider interface {
	Name() string
	Limits() publish.Limits
	CheckChannel(channel string) error
	Publish(ctx context.Context, msgs []publish.Message) error
}

// received is a message as a fake server accepted it.
type received struct {
	Channel string
	Name    string // the event name; empty for providers without event names
	Data    string
}

// fault is a scripted failure, as each fake can give it.
type fault struct {
	status     int
	code       int // the provider's own error code, for providers that have them
	retryAfter string
	delay      time.Duration
}

// fixture is one provider's real client talking to that provider's fake server.
type fixture struct {
	p           provider
	withSecret  func(t *testing.T, secret string) provider // another client, with a wrong secret
	withTimeout func(t *testing.T, d time.Duration) provider
	failNext    func(n int, f fault)
	onRequest   func(hook func() fault) // hook decides each request's fate from now on
	setDelay    func(d time.Duration)
	requests    func() int64
	received    func() []received
	connections func() int64 // nil when the fake does not count them
}

// providerUnderTest is one row of the conformance table: adding a provider is
// writing it, its fake, and one of these.
type providerUnderTest struct {
	name  string
	start func(t *testing.T) *fixture
	// events is set for providers that carry the event name.
	events bool
	// dropsRepeats is set for providers that drop a message whose id they have seen.
	dropsRepeats bool
	// rateLimit and authFailure are how the provider answers a client that sends too
	// much, or unknown credentials.
	rateLimit, authFailure fault
	invalidChannels        []string // names it never accepts
	unusualChannels        []string // names it accepts, though they need care (escaping)
}

// The test credentials. No error and no log line may show testSecret.
const (
	testAppID       = "1234"
	testKey         = "key-abc"
	testSecret      = "s3cr3t-never-shown"
	testAblyKeyName = "appid.keyid"
	testAblyKey     = testAblyKeyName + ":" + testSecret
)

func newPusher(t *testing.T, srv *pushertest.Server, edit func(*publish.PusherConfig)) provider {
	t.Helper()
	cfg := publish.PusherConfig{AppID: testAppID, Key: testKey, Secret: testSecret, Host: srv.Host(), Timeout: 5 * time.Second}
	return providertest.Build(t, "NewPusher", publish.NewPusher, cfg, edit)
}

func newAbly(t *testing.T, srv *ablytest.Server, edit func(*publish.AblyConfig)) provider {
	t.Helper()
	cfg := publish.AblyConfig{APIKey: testAblyKey, RESTHost: srv.Host(), Port: srv.Port(), TLS: false, Timeout: 5 * time.Second}
	return providertest.Build(t, "NewAbly", publish.NewAbly, cfg, edit)
}

func newPieSocket(t *testing.T, srv *piesockettest.Server, edit func(*publish.PieSocketConfig)) provider {
	t.Helper()
	cfg := publish.PieSocketConfig{APIKey: testKey, Secret: testSecret, APIURL: srv.URL(), Timeout: 5 * time.Second}
	return providertest.Build(t, "NewPieSocket", publish.NewPieSocket, cfg, edit)
}

func isTimeout(err error) bool {
	var nerr net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout())
}

var providersUnderTest = []providerUnderTest{
	{
		name:            "pusher",
		events:          true,
		start:           startPusher,
		rateLimit:       fault{status: http.StatusTooManyRequests, retryAfter: "7"},
		authFailure:     fault{status: http.StatusUnauthorized},
		invalidChannels: []string{"", "a b", "é", strings.Repeat("c", 165), "private-encrypted-x"},
		unusualChannels: []string{"private-a=b@c,d.e;f", strings.Repeat("c", 164)},
	},
	{
		name:            "ably",
		events:          true,
		dropsRepeats:    true,
		start:           startAbly,
		rateLimit:       fault{status: http.StatusTooManyRequests, code: 42911, retryAfter: "7"},
		authFailure:     fault{status: http.StatusUnauthorized, code: 40101},
		invalidChannels: []string{"", "[meta]log", ":x", "a\nb", "a\rb"},
		unusualChannels: []string{"news/live:1?x=é#y", "ns:page-1", strings.Repeat("c", 200)},
	},
	{
		name:            "piesocket",
		start:           startPieSocket,
		rateLimit:       fault{status: http.StatusTooManyRequests, retryAfter: "7"},
		authFailure:     fault{status: http.StatusUnauthorized},
		invalidChannels: []string{"", "a.b", "a b", "é", strings.Repeat("c", 31)},
		unusualChannels: []string{"A-z_0", strings.Repeat("c", 30)},
	},
}

func startPusher(t *testing.T) *fixture {
	srv := pushertest.New(t, testAppID, testKey, testSecret)
	return &fixture{
		p: newPusher(t, srv, nil),
		withSecret: func(t *testing.T, secret string) provider {
			return newPusher(t, srv, func(c *publish.PusherConfig) { c.Secret = secret })
		},
		withTimeout: func(t *testing.T, d time.Duration) provider {
			return newPusher(t, srv, func(c *publish.PusherConfig) { c.Timeout = d })
		},
		failNext: func(n int, f fault) { srv.FailNext(n, f.status, f.retryAfter) },
		onRequest: func(hook func() fault) {
			srv.SetScript(func(int64, []pushertest.Event) pushertest.Fault {
				f := hook()
				return pushertest.Fault{Status: f.status, RetryAfter: f.retryAfter, Delay: f.delay}
			})
		},
		setDelay: srv.SetDelay,
		requests: srv.Requests,
		received: receivedOf(srv.Events, func(e pushertest.Event) received { return received{Channel: e.Channel, Name: e.Name, Data: e.Data} }),
	}
}

// receivedOf returns what a fixture received: all a fake accepted, each converted by conv.
func receivedOf[T any](all func() []T, conv func(T) received) func() []received {
	return func() []received {
		var out []received
		for _, x := range all() {
			out = append(out, conv(x))
		}
		return out
	}
}

func startAbly(t *testing.T) *fixture {
	srv := ablytest.New(t, testAblyKey)
	return &fixture{
		p: newAbly(t, srv, nil),
		withSecret: func(t *testing.T, secret string) provider {
			return newAbly(t, srv, func(c *publish.AblyConfig) { c.APIKey = testAblyKeyName + ":" + secret })
		},
		withTimeout: func(t *testing.T, d time.Duration) provider {
			return newAbly(t, srv, func(c *publish.AblyConfig) { c.Timeout = d })
		},
		failNext: func(n int, f fault) { srv.FailNext(n, ablyFault(f)) },
		onRequest: func(hook func() fault) {
			srv.SetScript(func(int64, []ablytest.Message) ablytest.Fault { return ablyFault(hook()) })
		},
		setDelay:    srv.SetDelay,
		requests:    srv.Requests,
		received:    receivedOf(srv.Messages, func(m ablytest.Message) received { return received{Channel: m.Channel, Name: m.Name, Data: m.Data} }),
		connections: srv.Connections,
	}
}

func ablyFault(f fault) ablytest.Fault {
	return ablytest.Fault{Status: f.status, Code: f.code, RetryAfter: f.retryAfter, Delay: f.delay}
}

func startPieSocket(t *testing.T) *fixture {
	srv := piesockettest.New(t, testKey, testSecret)
	return &fixture{
		p: newPieSocket(t, srv, nil),
		withSecret: func(t *testing.T, secret string) provider {
			return newPieSocket(t, srv, func(c *publish.PieSocketConfig) { c.Secret = secret })
		},
		withTimeout: func(t *testing.T, d time.Duration) provider {
			return newPieSocket(t, srv, func(c *publish.PieSocketConfig) { c.Timeout = d })
		},
		failNext: func(n int, f fault) { srv.FailNext(n, pieSocketFault(f)) },
		onRequest: func(hook func() fault) {
			srv.SetScript(func(int64, *piesockettest.Message) piesockettest.Fault { return pieSocketFault(hook()) })
		},
		setDelay:    srv.SetDelay,
		requests:    srv.Requests,
		received:    receivedOf(srv.Messages, func(m piesockettest.Message) received { return received{Channel: m.Channel, Data: m.Data} }),
		connections: srv.Connections,
	}
}

func pieSocketFault(f fault) piesockettest.Fault {
	return piesockettest.Fault{Status: f.status, RetryAfter: f.retryAfter, Delay: f.delay}
}

// conformanceCases hold for every provider.
var conformanceCases = []struct {
	name string
	run  func(t *testing.T, pt providerUnderTest, fx *fixture)
}{
	{"publishes each channel's messages in order, byte for byte", testPublishesInOrder},
	{"a wrong secret is a permanent error", testWrongSecret},
	{"an auth failure is a permanent error", testAuthFailure},
	{"data of MaxData bytes is accepted", testAtMaxData},
	{"data over MaxData is rejected before any request", testOverMaxData},
	{"a split update keeps render order and each part fits", testSplitUpdate},
	{"a retried split update delivers every part", testSplitRetry},
	{"a rate limit is retryable after its wait", testRateLimit},
	{"a server error is retryable", testServerError},
	{"a timeout is retryable", testTimeout},
	{"invalid channels are rejected before any request", testInvalidChannels},
	{"unusual valid channels are published to", testUnusualChannels},
	{"cancelling the context aborts the request", testCancel},
	{"a cancelled context sends nothing", testCancelledBefore},
	{"concurrent publishes keep each channel's order", testConcurrent},
	{"sequential publishes reuse one connection", testConnectionReuse},
}

func TestConformance(t *testing.T) {
	for _, pt := range providersUnderTest {
		t.Run(pt.name, func(t *testing.T) {
			for _, c := range conformanceCases {
				t.Run(c.name, func(t *testing.T) {
					c.run(t, pt, pt.start(t))
				})
			}
		})
	}
}

// conformanceMessages are n updates of channel with ids <base>-<i>, as the relay
// makes them: each message's id its own.
func conformanceMessages(channel, base string, n int) []publish.Message {
	msgs := make([]publish.Message, n)
	for i := range msgs {
		msgs[i] = publish.Message{
			Channel: channel,
			Data:    fmt.Appendf(nil, `{"renders":{"p%d":{"show":true,"content":"<p>%s &amp; %d</p>"}},"removals":[]}`, i, channel, i),
			ID:      fmt.Sprintf("%s-%d", base, i),
		}
	}
	return msgs
}

// failure returns err as a *publish.Error of the provider, or fails t. No error shows a
// secret of the test credentials.
func failure(t *testing.T, pt providerUnderTest, err error) *publish.Error {
	t.Helper()
	var perr *publish.Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %v (%T) is not a *publish.Error", err, err)
	}
	t.Logf("error: %v", err)
	if perr.Provider != pt.name {
		t.Errorf("Provider = %q, want %q", perr.Provider, pt.name)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Errorf("error shows the secret: %v", err)
	}
	return perr
}

// checkReceived compares what the fake accepted with msgs, in order.
func checkReceived(t *testing.T, pt providerUnderTest, got []received, msgs []publish.Message) {
	t.Helper()
	if len(got) != len(msgs) {
		t.Fatalf("%d messages arrived, want %d: %+v", len(got), len(msgs), got)
	}
	for i, m := range msgs {
		if got[i].Channel != m.Channel || got[i].Data != string(m.Data) {
			t.Errorf("message %d = %+v, want channel %q data %s", i, got[i], m.Channel, m.Data)
		}
		if pt.events && got[i].Name != publish.EventName {
			t.Errorf("message %d has event name %q, want %q", i, got[i].Name, publish.EventName)
		}
	}
}

func testPublishesInOrder(t *testing.T, pt providerUnderTest, fx *fixture) {
	a, b := conformanceMessages("page-a", "10-x", 4), conformanceMessages("page-b", "11-y", 3)
	var msgs []publish.Message
	for i := range 4 {
		msgs = append(msgs, a[i])
		if i < len(b) {
			msgs = append(msgs, b[i])
		}
	}
	for _, batch := range [][]publish.Message{msgs[:1], msgs[1:]} {
		if err := fx.p.Publish(t.Context(), batch); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	got := fx.received()
	var gotA, gotB []received
	for _, r := range got {
		if r.Channel == "page-a" {
			gotA = append(gotA, r)
		} else {
			gotB = append(gotB, r)
		}
	}
	checkReceived(t, pt, gotA, a)
	checkReceived(t, pt, gotB, b)
}

func testWrongSecret(t *testing.T, pt providerUnderTest, fx *fixture) {
	p := fx.withSecret(t, "wrong-secret")
	perr := failure(t, pt, p.Publish(t.Context(), conformanceMessages("page-1", "1-a", 2)))
	if perr.Rejected || perr.Status < 400 || perr.Status >= 500 {
		t.Errorf("Rejected %v Status %d, want a 4xx answer", perr.Rejected, perr.Status)
	}
	if retry.Classify(perr).Retryable {
		t.Error("a wrong secret is classified as retryable")
	}
	if fx.requests() == 0 || len(fx.received()) != 0 {
		t.Errorf("%d requests, %d messages accepted", fx.requests(), len(fx.received()))
	}
}

func testAuthFailure(t *testing.T, pt providerUnderTest, fx *fixture) {
	fx.failNext(1, pt.authFailure)
	perr := failure(t, pt, fx.p.Publish(t.Context(), conformanceMessages("page-1", "1-a", 1)))
	if perr.Status != pt.authFailure.status || perr.Code != pt.authFailure.code {
		t.Errorf("Status %d Code %d, want %d and %d", perr.Status, perr.Code, pt.authFailure.status, pt.authFailure.code)
	}
	if retry.Classify(perr).Retryable {
		t.Error("an auth failure is classified as retryable")
	}
}

func testAtMaxData(t *testing.T, pt providerUnderTest, fx *fixture) {
	msg := publish.Message{Channel: "page-1", Data: providertest.UpdateOfSize(t, fx.p.Limits().MaxData), ID: "1234567890-3w5e11264sgsg-12"}
	if err := fx.p.Publish(t.Context(), []publish.Message{msg}); err != nil {
		t.Fatalf("Publish of %d bytes: %v", len(msg.Data), err)
	}
	checkReceived(t, pt, fx.received(), []publish.Message{msg})
}

func testOverMaxData(t *testing.T, pt providerUnderTest, fx *fixture) {
	msgs := append(conformanceMessages("page-1", "1-a", 2), publish.Message{Channel: "page-1", Data: providertest.UpdateOfSize(t, fx.p.Limits().MaxData+1), ID: "1-a-2"})
	perr := failure(t, pt, fx.p.Publish(t.Context(), msgs))
	if !perr.Rejected || retry.Classify(perr).Retryable {
		t.Errorf("error %v, want a permanent rejection", perr)
	}
	if fx.requests() != 0 {
		t.Errorf("%d requests made before the rejection", fx.requests())
	}
}

// splitUpdate is a merged update far over max, split as the relay splits it, with
// message ids as the relay makes them, and the page readers had before it.
func splitUpdate(t *testing.T, max int) (u *merge.Update, before string, msgs []publish.Message) {
	t.Helper()
	before = `{"renders":{"old-1":{"show":true,"content":"<p>old 1</p>"},"old-2":{"show":true,"content":"<p>old 2</p>"}},"removals":[]}`
	ev := event.Event{Channel: "page-1"}
	for i := range 40 {
		size := max / 10 * (1 + i%4) // posts of a tenth to four tenths of the limit
		unit := fmt.Sprintf("<p>post %d &amp; \"quotes\" é</p>", i)
		content := strings.Repeat(unit, size/len(unit)+1)[:size]
		ev.Renders = append(ev.Renders, event.Render{ID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), Show: i%5 != 0, Content: strings.ToValidUTF8(content, "")})
	}
	ev.Renders = append(ev.Renders, event.Render{ID: "old-1", Show: true, Content: "<p>old 1, edited</p>"})
	ev.Removals = []string{"old-2", "never-there"}
	u = merge.New("page-1")
	u.Add(ev)
	parts, tooBig := u.Split(max)
	if len(tooBig) != 0 || len(parts) < 3 {
		t.Fatalf("split into %d parts with %d posts too big; want 3 or more parts, none too big", len(parts), len(tooBig))
	}
	for i, data := range parts {
		if len(data) > max {
			t.Errorf("part %d is %d bytes, over %d", i, len(data), max)
		}
		msgs = append(msgs, publish.Message{Channel: "page-1", Data: data, ID: fmt.Sprintf("77-split-%d", i)})
	}
	return u, before, msgs
}

// checkPage applies what readers received after the page before, and compares the
// page with the one the whole update leaves.
func checkPage(t *testing.T, u *merge.Update, before string, got []received) {
	t.Helper()
	var want, page browsertest.Page
	for _, p := range []*browsertest.Page{&want, &page} {
		if err := p.Apply([]byte(before)); err != nil {
			t.Fatal(err)
		}
	}
	if err := want.Apply(u.AppendJSON(nil)); err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if err := page.Apply([]byte(r.Data)); err != nil {
			t.Fatalf("browser: %v", err)
		}
	}
	if !page.Equal(&want) {
		t.Errorf("the page after %d messages differs from the page after the whole update", len(got))
	}
	if len(page.Posts) != 41 || page.Posts[0].ID != "00000039-0000-4000-8000-000000000000" || page.Posts[40].ID != "old-1" {
		t.Errorf("posts in the wrong order: first %s, %d posts", page.Posts[0].ID, len(page.Posts))
	}
}

// testSplitUpdate splits a merged update far over the limit: each part fits, and
// applied in order the parts leave a page as the whole update would.
func testSplitUpdate(t *testing.T, pt providerUnderTest, fx *fixture) {
	u, before, msgs := splitUpdate(t, fx.p.Limits().MaxData)
	if err := fx.p.Publish(t.Context(), msgs); err != nil {
		t.Fatalf("Publish of %d parts: %v", len(msgs), err)
	}
	got := fx.received()
	checkReceived(t, pt, got, msgs)
	checkPage(t, u, before, got)
}

// testSplitRetry publishes a split update twice, as a worker does that retries it
// (or takes it over after a crash) with the same ids. A provider that drops repeats
// must deliver every part once, not just the first; others deliver it all again,
// which leaves the page as it was.
func testSplitRetry(t *testing.T, pt providerUnderTest, fx *fixture) {
	u, before, msgs := splitUpdate(t, fx.p.Limits().MaxData)
	for attempt := range 2 {
		if err := fx.p.Publish(t.Context(), msgs); err != nil {
			t.Fatalf("attempt %d: Publish of %d parts: %v", attempt+1, len(msgs), err)
		}
	}
	got := fx.received()
	if pt.dropsRepeats {
		checkReceived(t, pt, got, msgs)
	} else {
		checkReceived(t, pt, got, append(slices.Clone(msgs), msgs...))
	}
	checkPage(t, u, before, got)
}

func testRateLimit(t *testing.T, pt providerUnderTest, fx *fixture) {
	fx.failNext(1, pt.rateLimit)
	perr := failure(t, pt, fx.p.Publish(t.Context(), conformanceMessages("page-1", "1-a", 2)))
	class := retry.Classify(perr)
	if !class.Retryable || class.RetryAfter != 7*time.Second {
		t.Errorf("classified %+v, want retryable after 7s", class)
	}
	if perr.Status != pt.rateLimit.status || perr.Code != pt.rateLimit.code {
		t.Errorf("Status %d Code %d, want %d and %d", perr.Status, perr.Code, pt.rateLimit.status, pt.rateLimit.code)
	}
	if n := len(fx.received()); n != 0 {
		t.Errorf("%d messages accepted", n)
	}
	// Once the limit lifts, the same messages go through.
	if err := fx.p.Publish(t.Context(), conformanceMessages("page-1", "1-a", 2)); err != nil {
		t.Fatalf("Publish after the rate limit: %v", err)
	}
	checkReceived(t, pt, fx.received(), conformanceMessages("page-1", "1-a", 2))
}

func testServerError(t *testing.T, pt providerUnderTest, fx *fixture) {
	fx.failNext(1, fault{status: http.StatusServiceUnavailable})
	perr := failure(t, pt, fx.p.Publish(t.Context(), conformanceMessages("page-1", "1-a", 1)))
	if perr.Status != http.StatusServiceUnavailable || !retry.Classify(perr).Retryable {
		t.Errorf("error %v (status %d), want a retryable 503", perr, perr.Status)
	}
}

func testTimeout(t *testing.T, pt providerUnderTest, fx *fixture) {
	fx.setDelay(time.Minute)
	p := fx.withTimeout(t, 100*time.Millisecond)
	start := time.Now()
	err := p.Publish(t.Context(), conformanceMessages("page-1", "1-a", 1))
	perr := failure(t, pt, err)
	if perr.Status != 0 || !isTimeout(err) || !retry.Classify(err).Retryable {
		t.Errorf("error %v (status %d), want a retryable timeout with status 0", err, perr.Status)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Publish took %v with a 100ms timeout", d)
	}
}

func testInvalidChannels(t *testing.T, pt providerUnderTest, fx *fixture) {
	for _, ch := range pt.invalidChannels {
		perr := failure(t, pt, fx.p.CheckChannel(ch))
		if !perr.Rejected || retry.Classify(perr).Retryable {
			t.Errorf("CheckChannel(%q): %v, want a permanent rejection", ch, perr)
		}
		msgs := append(conformanceMessages("page-1", "1-a", 1), publish.Message{Channel: ch, Data: []byte(`{"renders":{},"removals":[]}`), ID: "1-a-1"})
		if perr := failure(t, pt, fx.p.Publish(t.Context(), msgs)); !perr.Rejected {
			t.Errorf("Publish to %q: %v, want a rejection", ch, perr)
		}
	}
	if fx.requests() != 0 {
		t.Errorf("%d requests made for invalid channels", fx.requests())
	}
}

func testUnusualChannels(t *testing.T, pt providerUnderTest, fx *fixture) {
	var msgs []publish.Message
	for i, ch := range pt.unusualChannels {
		if err := fx.p.CheckChannel(ch); err != nil {
			t.Errorf("CheckChannel(%q): %v", ch, err)
		}
		msgs = append(msgs, conformanceMessages(ch, fmt.Sprint(i), 1)...)
	}
	if err := fx.p.Publish(t.Context(), msgs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	checkReceived(t, pt, fx.received(), msgs)
}

func testCancel(t *testing.T, pt providerUnderTest, fx *fixture) {
	arrived := make(chan struct{}, 1)
	fx.onRequest(func() fault {
		select {
		case arrived <- struct{}{}:
		default:
		}
		return fault{delay: time.Minute}
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fx.p.Publish(ctx, conformanceMessages("page-1", "1-a", 2)) }()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the fake")
	}
	cancel()
	select {
	case err := <-done:
		perr := failure(t, pt, err)
		if perr.Status != 0 || !errors.Is(err, context.Canceled) {
			t.Errorf("error %v (status %d), want context.Canceled with status 0", err, perr.Status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish did not return after its context was cancelled")
	}
	if n := len(fx.received()); n != 0 {
		t.Errorf("%d messages accepted", n)
	}
}

func testCancelledBefore(t *testing.T, pt providerUnderTest, fx *fixture) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	msgs := append(conformanceMessages("page-1", "1-a", 2), conformanceMessages("page-2", "2-b", 2)...)
	err := fx.p.Publish(ctx, msgs)
	if perr := failure(t, pt, err); perr.Status != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if fx.requests() != 0 {
		t.Errorf("%d requests after cancellation", fx.requests())
	}
}

func testConcurrent(t *testing.T, pt providerUnderTest, fx *fixture) {
	const workers, perWorker = 6, 9
	providertest.Concurrently(t, workers, func(w int) error {
		msgs := conformanceMessages(fmt.Sprintf("page-%d", w), fmt.Sprintf("%d-w", w), perWorker)
		for start := 0; start < perWorker; start += 3 {
			if err := fx.p.Publish(t.Context(), msgs[start:start+3]); err != nil {
				return fmt.Errorf("Publish: %w", err)
			}
		}
		return nil
	})
	byChannel := map[string][]received{}
	for _, r := range fx.received() {
		byChannel[r.Channel] = append(byChannel[r.Channel], r)
	}
	for w := range workers {
		ch := fmt.Sprintf("page-%d", w)
		checkReceived(t, pt, byChannel[ch], conformanceMessages(ch, fmt.Sprintf("%d-w", w), perWorker))
	}
}

func testConnectionReuse(t *testing.T, pt providerUnderTest, fx *fixture) {
	if fx.connections == nil {
		t.Skipf("the %s fake does not count connections", pt.name)
	}
	for i := range 20 {
		if err := fx.p.Publish(t.Context(), conformanceMessages("page-1", fmt.Sprint(i), 1)); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	// Error answers too leave the connection usable.
	fx.failNext(3, pt.rateLimit)
	for i := range 3 {
		if err := fx.p.Publish(t.Context(), conformanceMessages("page-1", fmt.Sprint(100+i), 1)); err == nil {
			t.Fatal("Publish succeeded through a scripted failure")
		}
	}
	if n := fx.connections(); n != 1 {
		t.Errorf("%d connections for 23 sequential requests, want 1", n)
	}
}
