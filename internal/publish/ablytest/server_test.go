package ablytest

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ably/ably-go/ably"
	"github.com/liverelay/liverelay/internal/publish/providertest"
)

const (
	keyName = "app1.key1"
	secret  = "ably-s3cret"
	key     = keyName + ":" + secret
)

// call is a hand-made request to the fake.
type call struct {
	method string
	path   string
	ctype  string
	body   string
	auth   string // Authorization header; empty means basic auth with the key
	accept string
}

// send returns the status, the decoded JSON answer and the headers.
func (c call) send(t *testing.T, s *Server) (int, any, http.Header) {
	t.Helper()
	method := cmp.Or(c.method, http.MethodPost)
	ctype := cmp.Or(c.ctype, mimeJSON)
	auth := cmp.Or(c.auth, "Basic "+base64.StdEncoding.EncodeToString([]byte(key)))
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", auth)
	if c.accept != "" {
		req.Header.Set("Accept", c.accept)
	}
	resp, b := providertest.Do(t, req)
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("answer %q is not JSON: %v", b, err)
	}
	return resp.StatusCode, v, resp.Header
}

// errorCode is the code of an Ably error answer, 0 when it is not one.
func errorCode(v any) int {
	obj, _ := v.(map[string]any)
	e, _ := obj["error"].(map[string]any)
	code, _ := e["code"].(float64)
	return int(code)
}

func message(id, data string) string {
	return fmt.Sprintf(`{"id":%q,"name":"live-page-update","data":%q,"encoding":"json"}`, id, data)
}

func TestServerVerifies(t *testing.T) {
	ok := message("b:0", `{"renders":{},"removals":[]}`)
	tests := []struct {
		name   string
		call   call
		status int
		code   int
	}{
		{"accepted", call{path: "/channels/page-1/messages", body: ok}, 201, 0},
		{"array accepted", call{path: "/channels/page-1/messages", body: "[" + message("m:0", "{}") + "," + message("m:1", "{}") + "]"}, 201, 0},
		{"escaped channel", call{path: "/channels/news%2Flive%3Aa/messages", body: ok}, 201, 0},
		{"no credentials", call{path: "/channels/c/messages", body: ok, auth: "None"}, 401, CodeInvalidCreds},
		{"wrong secret", call{path: "/channels/c/messages", body: ok,
			auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(keyName+":nope"))}, 401, CodeInvalidCreds},
		{"wrong key name", call{path: "/channels/c/messages", body: ok,
			auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("app1.other:"+secret))}, 401, CodeInvalidCreds},
		{"qualifier prefix", call{path: "/channels/%5Bmeta%5Dlog/messages", body: ok}, 400, CodeInvalidChannel},
		{"colon prefix", call{path: "/channels/%3Ax/messages", body: ok}, 400, CodeInvalidChannel},
		{"newline", call{path: "/channels/a%0Ab/messages", body: ok}, 400, CodeInvalidChannel},
		{"too large", call{path: "/channels/c/messages", body: message("", strings.Repeat("x", DefaultMaxMessageBytes))}, 400, CodeTooLarge},
		{"too large together", call{path: "/channels/c/messages",
			body: "[" + message("m:0", strings.Repeat("x", 40000)) + "," + message("m:1", strings.Repeat("x", 40000)) + "]"}, 400, CodeTooLarge},
		{"ids not base:index", call{path: "/channels/c/messages", body: "[" + message("m:0", "{}") + "," + message("n:1", "{}") + "]"}, 400, CodeInvalidID},
		{"ids out of order", call{path: "/channels/c/messages", body: "[" + message("m:1", "{}") + "," + message("m:0", "{}") + "]"}, 400, CodeInvalidID},
		{"ids without index", call{path: "/channels/c/messages", body: "[" + message("m", "{}") + "," + message("n", "{}") + "]"}, 400, CodeInvalidID},
		{"index with a leading zero", call{path: "/channels/c/messages", body: "[" + message("m:00", "{}") + "," + message("m:01", "{}") + "]"}, 400, CodeInvalidID},
		{"one message without id", call{path: "/channels/c/messages", body: "[" + message("m:0", "{}") + "," + message("", "{}") + "]"}, 400, CodeInvalidID},
		{"alone with index 1", call{path: "/channels/c/messages", body: message("m:1", "{}")}, 400, CodeInvalidID},
		{"alone in an array with index 1", call{path: "/channels/c/messages", body: "[" + message("m:1", "{}") + "]"}, 400, CodeInvalidID},
		{"alone without index", call{path: "/channels/c/messages", body: message("7-abc", "{}")}, 201, 0},
		{"alone with a colon, no index", call{path: "/channels/c/messages", body: message("news:live", "{}")}, 201, 0},
		{"batch spec with index 1", call{path: "/messages", body: `{"channels":["c"],"messages":[` + message("m:1", "{}") + `]}`}, 400, CodeBatchPartial},
		{"object data", call{path: "/channels/c/messages", body: `{"name":"e","data":{"a":1}}`}, 400, CodeInvalidData},
		{"not JSON", call{path: "/channels/c/messages", body: `{`}, 400, CodeInvalidBody},
		{"content type", call{path: "/channels/c/messages", body: ok, ctype: "text/plain"}, 400, CodeInvalidBody},
		{"unknown path", call{path: "/apps/x", body: ok}, 404, CodeNotFound},
		{"GET", call{method: http.MethodGet, path: "/channels/c/messages"}, 405, 40500},
		{"empty batch", call{path: "/messages", body: `[]`}, 400, CodeInvalidBody},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t, key)
			status, answer, header := tc.call.send(t, s)
			if status != tc.status || errorCode(answer) != tc.code {
				t.Fatalf("answer %d %v, want %d with code %d", status, answer, tc.status, tc.code)
			}
			if tc.code != 0 && header.Get("X-Ably-Errorcode") != fmt.Sprint(tc.code) {
				t.Errorf("X-Ably-Errorcode %q, want %d", header.Get("X-Ably-Errorcode"), tc.code)
			}
			wantRejected := int64(0)
			if tc.status >= 300 {
				wantRejected = 1
				if n := len(s.Messages()); n != 0 {
					t.Errorf("%d messages recorded from a refused request", n)
				}
			}
			if s.Rejected() != wantRejected || s.Requests() != 1 {
				t.Errorf("%d requests, %d rejected", s.Requests(), s.Rejected())
			}
		})
	}
}

// TestServerLibrary publishes through ably-go, in JSON and in msgpack.
func TestServerLibrary(t *testing.T) {
	for _, binary := range []bool{false, true} {
		t.Run(fmt.Sprintf("binary=%v", binary), func(t *testing.T) {
			s := New(t, key)
			client, err := ably.NewREST(ably.WithKey(key), ably.WithRESTHost(s.Host()), ably.WithPort(s.Port()),
				ably.WithTLS(false), ably.WithInsecureAllowBasicAuthWithoutTLS(), ably.WithUseBinaryProtocol(binary),
				ably.WithLogLevel(ably.LogNone))
			if err != nil {
				t.Fatal(err)
			}
			ch := client.Channels.Get("news/live:1")
			msgs := []*ably.Message{
				{ID: "base:0", Name: "live-page-update", Data: `{"renders":{},"removals":["<a>"]}`, Encoding: "json"},
				{ID: "base:1", Name: "live-page-update", Data: []byte{0, 1, 2}},
			}
			if err := ch.PublishMultiple(t.Context(), msgs); err != nil {
				t.Fatalf("PublishMultiple: %v", err)
			}
			got := s.Messages()
			if len(got) != 2 {
				t.Fatalf("recorded %+v", got)
			}
			if m := got[0]; m.Channel != "news/live:1" || m.ID != "base:0" || m.Name != "live-page-update" ||
				m.Data != `{"renders":{},"removals":["<a>"]}` || m.Encoding != "json" {
				t.Errorf("first message %+v", m)
			}
			if m := got[1]; Size(m) != len("live-page-update")+3 {
				t.Errorf("binary message %+v counted as %d bytes", m, Size(m))
			}

			// The library reads the fake's error answers in either format.
			err = client.Channels.Get("[bad").Publish(t.Context(), "e", "x")
			var info *ably.ErrorInfo
			if !errors.As(err, &info) || info.Code != CodeInvalidChannel || info.StatusCode != 400 {
				t.Errorf("error %v, want code %d", err, CodeInvalidChannel)
			}

			// And batch answers, through Request.
			s.FailChannel("b", 1, Fault{Status: 429, Code: 42911})
			body := []map[string]any{
				{"channels": []string{"a"}, "messages": []map[string]any{{"id": "x:0", "name": "e", "data": "1"}}},
				{"channels": []string{"b"}, "messages": []map[string]any{{"id": "y:0", "name": "e", "data": "2"}}},
			}
			page, err := client.Request("post", "/messages", ably.RequestWithBody(body)).Pages(t.Context())
			if err != nil {
				t.Fatalf("batch: %v", err)
			}
			if page.StatusCode() != 400 || page.ErrorCode() != CodeBatchPartial {
				t.Errorf("batch answered %d code %d, want 400 and %d", page.StatusCode(), page.ErrorCode(), CodeBatchPartial)
			}
			if got := s.Messages(); len(got) != 3 || got[2].Channel != "a" {
				t.Errorf("after the batch: %+v", got)
			}
		})
	}
}

// TestServerIdempotency: the key of <base>:<idx> is <base>, shared by the messages of
// one publish; a publish that repeats a key of its channel within two minutes is
// accepted and not delivered, on the channel and the batch endpoints alike.
func TestServerIdempotency(t *testing.T) {
	array := func(ids ...string) string {
		var msgs []string
		for _, id := range ids {
			msgs = append(msgs, message(id, "{}"))
		}
		return "[" + strings.Join(msgs, ",") + "]"
	}
	batch := func(ch, id string) call {
		return call{path: "/messages", body: fmt.Sprintf(`[{"channels":[%q],"messages":[%s]}]`, ch, message(id, "{}"))}
	}
	publish := func(ch, body string) call { return call{path: "/channels/" + ch + "/messages", body: body} }
	steps := []struct {
		name      string
		call      call
		after     time.Duration // the clock moves on by this much first
		delivered int           // messages delivered by the step
	}{
		{"first", publish("c", message("seq-7:0", "{}")), 0, 1},
		{"repeat", publish("c", message("seq-7:0", "{}")), 0, 0},
		{"repeat in a batch", batch("c", "seq-7:0"), 0, 0},
		{"same id on another channel", publish("d", message("seq-7:0", "{}")), 0, 1},
		{"array shares one key", publish("c", array("k:0", "k:1", "k:2")), 0, 3},
		{"its first message alone is a repeat", publish("c", message("k:0", "{}")), 0, 0},
		{"a new base is a new key", publish("c", message("k-1:0", "{}")), 0, 1},
		{"an id without index is its own key", publish("c", message("plain", "{}")), 0, 1},
		{"and repeats as itself", batch("c", "plain"), 0, 0},
		{"<key>:0 is the key of <key>", publish("c", message("plain:0", "{}")), 0, 0},
		{"no id, no key", publish("c", message("", "{}")), 0, 1},
		{"no id again", publish("c", message("", "{}")), 0, 1},
		{"within the window", publish("c", message("seq-7:0", "{}")), DedupWindow - time.Second, 0},
		{"past the window", publish("c", message("seq-7:0", "{}")), time.Second, 1},
		{"remembered again from then", publish("c", message("seq-7:0", "{}")), DedupWindow - time.Second, 0},
	}
	s := New(t, key)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	delivered, dropped := 0, 0
	for _, st := range steps {
		now = now.Add(st.after)
		status, answer, _ := st.call.send(t, s)
		if status != 201 {
			t.Fatalf("%s: answer %d %v, want 201", st.name, status, answer)
		}
		before := delivered
		delivered = len(s.Messages())
		if got := delivered - before; got != st.delivered {
			t.Errorf("%s: %d messages delivered, want %d", st.name, got, st.delivered)
		}
		if st.delivered == 0 {
			dropped++
		}
		if got := s.Messages(); st.delivered > 0 && !got[len(got)-1].Received.Equal(now) {
			t.Errorf("%s: received at %v, want the fake's clock %v", st.name, got[len(got)-1].Received, now)
		}
	}
	if s.Duplicates() != int64(dropped) {
		t.Errorf("%d duplicates counted, want %d", s.Duplicates(), dropped)
	}
}

func TestServerBatch(t *testing.T) {
	spec := func(ch, id string) string {
		return fmt.Sprintf(`{"channels":[%q],"messages":[%s]}`, ch, message(id, "{}"))
	}
	body := "[" + spec("a", "1:0") + "," + spec("b", "2:0") + "," + spec("[c", "3:0") + "]"
	tests := []struct {
		name   string
		format BatchFormat
		body   string
		fail   string // channel scripted to fail with 42911
		status int
		want   string // the answer, as JSON
		kept   []string
	}{
		{name: "legacy success", body: "[" + spec("a", "1:0") + "," + spec("b", "2:0") + "]", status: 201, kept: []string{"a", "b"},
			want: `[{"channel":"a","messageId":"1","serials":["01fake@0"]},{"channel":"b","messageId":"2","serials":["01fake@0"]}]`},
		{name: "single spec", body: `{"channels":["a","b"],"messages":` + message("", "{}") + `}`, status: 201, kept: []string{"a", "b"},
			want: `[{"channel":"a","messageId":"fake","serials":["01fake@0"]},{"channel":"b","messageId":"fake","serials":["01fake@0"]}]`},
		{name: "legacy partial", body: body, fail: "b", status: 400, kept: []string{"a"},
			want: `{"error":{"message":"Batched response includes errors","code":40020,"statusCode":400,"href":"https://help.ably.io/error/40020"},"batchResponse":[` +
				`{"channel":"a","messageId":"1","serials":["01fake@0"]},` +
				`{"channel":"b","error":{"message":"Too Many Requests","code":42911,"statusCode":429}},` +
				`{"channel":"[c","error":{"message":"invalid channel name \"[c\": cannot start with '[' or ':'","code":40010,"statusCode":400,"href":"https://help.ably.io/error/40010"}}]}`},
		{name: "v2 partial", format: BatchV2, body: body, fail: "b", status: 201, kept: []string{"a"},
			want: `[{"failureCount":0,"results":[{"channel":"a","messageId":"1","serials":["01fake@0"]}],"successCount":1},` +
				`{"failureCount":1,"results":[{"channel":"b","error":{"message":"Too Many Requests","code":42911,"statusCode":429}}],"successCount":0},` +
				`{"failureCount":1,"results":[{"channel":"[c","error":{"message":"invalid channel name \"[c\": cannot start with '[' or ':'","code":40010,"statusCode":400,"href":"https://help.ably.io/error/40010"}}],"successCount":0}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t, key)
			s.SetBatchFormat(tc.format)
			if tc.fail != "" {
				s.FailChannel(tc.fail, 1, Fault{Status: 429, Code: 42911})
			}
			status, answer, _ := (call{path: "/messages", body: tc.body}).send(t, s)
			var want any
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if status != tc.status || !jsonEqual(answer, want) {
				got, _ := json.Marshal(answer)
				t.Fatalf("answer %d %s\nwant %d %s", status, got, tc.status, tc.want)
			}
			var kept []string
			for _, m := range s.Messages() {
				kept = append(kept, m.Channel)
			}
			if fmt.Sprint(kept) != fmt.Sprint(tc.kept) {
				t.Errorf("recorded channels %v, want %v", kept, tc.kept)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestServerBatchLimits(t *testing.T) {
	s := New(t, key)
	var specs []string
	for i := range MaxBatchChannels + 1 {
		specs = append(specs, fmt.Sprintf(`{"channels":["c%d"],"messages":[%s]}`, i, message("", "{}")))
	}
	if status, answer, _ := (call{path: "/messages", body: "[" + strings.Join(specs, ",") + "]"}).send(t, s); status != 400 {
		t.Errorf("%d channels: answer %d %v, want 400", len(specs), status, answer)
	}
	big := fmt.Sprintf(`{"channels":["c"],"messages":[%s]}`, message("", strings.Repeat("x", 60000)))
	var bodies []string
	for range 40 {
		bodies = append(bodies, big)
	}
	if status, answer, _ := (call{path: "/messages", body: "[" + strings.Join(bodies, ",") + "]"}).send(t, s); status != 400 || errorCode(answer) != CodeTooLarge {
		t.Errorf("body over 2 MiB: answer %d %v, want 400 with code %d", status, answer, CodeTooLarge)
	}
}

func TestServerFailNext(t *testing.T) {
	s := New(t, key)
	s.FailNext(2, Fault{Status: 429, Code: 42911, RetryAfter: "3"})
	for i := range 3 {
		status, answer, header := (call{path: "/channels/c/messages", body: message("", "{}")}).send(t, s)
		if i < 2 && (status != 429 || errorCode(answer) != 42911 || header.Get("Retry-After") != "3") {
			t.Errorf("request %d: %d %v %v", i, status, answer, header)
		}
		if i == 2 && status != 201 {
			t.Errorf("request %d: %d %v", i, status, answer)
		}
	}
	if len(s.Messages()) != 1 || s.Rejected() != 2 {
		t.Errorf("%d messages, %d rejected", len(s.Messages()), s.Rejected())
	}
}

func TestServerScript(t *testing.T) {
	s := New(t, key)
	s.SetScript(func(n int64, msgs []Message) Fault {
		if len(msgs) == 1 && msgs[0].Channel == "sick" {
			return Fault{Status: 503}
		}
		return Fault{}
	})
	if status, answer, _ := (call{path: "/channels/sick/messages", body: message("", "{}")}).send(t, s); status != 503 || errorCode(answer) != 50300 {
		t.Errorf("answer %d %v", status, answer)
	}
	if status, _, _ := (call{path: "/channels/well/messages", body: message("", "{}")}).send(t, s); status != 201 {
		t.Errorf("answer %d", status)
	}
}

func TestServerMsgpackAnswer(t *testing.T) {
	s := New(t, key)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/channels/%5Bx/messages", strings.NewReader(message("", "{}")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mimeJSON)
	req.Header.Set("Accept", mimeMsgpack)
	req.SetBasicAuth(keyName, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != mimeMsgpack {
		t.Errorf("answer %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestServerDelay(t *testing.T) {
	s := New(t, key)
	s.SetDelay(time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/channels/c/messages", strings.NewReader(message("", "{}")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mimeJSON)
	req.SetBasicAuth(keyName, secret)
	start := time.Now()
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a deadline", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	if len(s.Messages()) != 0 {
		t.Error("a message was recorded")
	}
}

func TestServerWait(t *testing.T) {
	s := New(t, key)
	done := make(chan []Message)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var got []Message
		err := s.Wait(ctx, func(msgs []Message) bool { got = msgs; return len(msgs) >= 2 })
		if err != nil {
			got = nil
		}
		done <- got
	}()
	for i := range 2 {
		(call{path: "/channels/c/messages", body: message(fmt.Sprintf("w%d:0", i), "{}")}).send(t, s)
	}
	if got := <-done; len(got) != 2 {
		t.Fatalf("Wait saw %d messages", len(got))
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Wait(ctx, func(msgs []Message) bool { return len(msgs) > 5 }); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a cancelled context: %v", err)
	}
}

// TestServerConnections counts connections: a client that reads its answers keeps one.
func TestServerConnections(t *testing.T) {
	s := New(t, key)
	for i := range 5 {
		(call{path: "/channels/c/messages", body: message(fmt.Sprintf("k%d:0", i), "{}")}).send(t, s)
	}
	if s.Connections() != 1 {
		t.Errorf("%d connections for 5 sequential requests read to the end, want 1", s.Connections())
	}
}

// TestServerSize: the per-publish limit counts name, data, clientId and extras, as
// Ably does, and neither the id nor the encoding.
func TestServerSize(t *testing.T) {
	const limit = 1024
	msg := func(id, name, data, clientID, extras string) string {
		obj := map[string]any{"id": id, "name": name, "data": data, "encoding": "json", "clientId": clientID}
		if extras != "" {
			obj["extras"] = json.RawMessage(extras)
		}
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	extras := `{"headers":{"k":"v"}}` // 21 bytes as JSON
	longID := strings.Repeat("i", 500) + ":0"
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"at the limit, id and encoding not counted", msg(longID, "nm", strings.Repeat("d", limit-2-3-len(extras)), "cli", extras), 201},
		{"one byte of data over", msg("a", "nm", strings.Repeat("d", limit-2-3-len(extras)+1), "cli", extras), 400},
		{"one byte of clientId over", msg("a", "nm", strings.Repeat("d", limit-2-3-len(extras)), "clie", extras), 400},
		{"one byte of name over", msg("a", "nam", strings.Repeat("d", limit-2-3-len(extras)), "cli", extras), 400},
		{"extras counted", msg("a", "nm", strings.Repeat("d", limit-2-3), "cli", extras), 400},
		{"array counted together", "[" + msg("b:0", "", strings.Repeat("d", limit/2), "", "") + "," + msg("b:1", "", strings.Repeat("d", limit/2+1), "", "") + "]", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t, key)
			s.SetMaxMessageBytes(limit)
			status, answer, _ := (call{path: "/channels/c/messages", body: tc.body}).send(t, s)
			if status != tc.status || (status == 400 && errorCode(answer) != CodeTooLarge) {
				t.Fatalf("answer %d %v, want %d", status, answer, tc.status)
			}
		})
	}
	m := Message{ID: longID, Name: "nm", Data: "dd", Encoding: "json", ClientID: "cli", Extras: extras}
	if got, want := Size(m), 2+2+3+len(extras); got != want {
		t.Errorf("Size(%+v) = %d, want %d", m, got, want)
	}
}
