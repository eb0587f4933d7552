// Requests and answers in Ably's REST formats: a body in JSON or msgpack, one
// message or an array, batch specs; answers, errors included, written in the format
// the client accepts.

package ablytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/ugorji/go/codec"
)

const (
	mimeJSON    = "application/json"
	mimeMsgpack = "application/x-msgpack"
)

// publish is one decoded request: one channel's messages, or the specs of a batch.
type publish struct {
	batch bool
	specs []spec
}

type spec struct {
	channels []string
	msgs     []Message // Channel left empty
}

// all lists the request's messages, one per channel they go to.
func (p *publish) all() []Message {
	var out []Message
	for _, sp := range p.specs {
		for _, ch := range sp.channels {
			for _, m := range sp.msgs {
				m.Channel = ch
				out = append(out, m)
			}
		}
	}
	return out
}

// baseID is the base of the first message's id, <base>:<index>, for the messageId of
// an answer.
func baseID(msgs []Message) string {
	if len(msgs) == 0 || msgs[0].ID == "" {
		return "fake"
	}
	if base, _, ok := splitID(msgs[0].ID); ok {
		return base
	}
	return msgs[0].ID
}

func serials(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("01fake@%d", i)
	}
	return out
}

// reject answers an error, as Ably does: the error object and its code in a header.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, err *errorInfo, retryAfter string) {
	s.srv.CountRejected()
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("X-Ably-Errorcode", strconv.Itoa(err.Code))
	status := err.StatusCode
	if status == 0 {
		status = http.StatusInternalServerError
	}
	s.answer(w, r, status, map[string]any{"error": err})
}

// answer writes v in the format the client accepts: msgpack or JSON.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, status int, v any) {
	var out []byte
	typ := mimeJSON
	if strings.Contains(r.Header.Get("Accept"), mimeMsgpack) {
		typ = mimeMsgpack
		if err := codec.NewEncoderBytes(&out, msgpackHandle()).Encode(normalize(v)); err != nil {
			panic(fmt.Sprintf("ablytest: encode msgpack: %v", err))
		}
	} else {
		var err error
		if out, err = json.Marshal(v); err != nil {
			panic(fmt.Sprintf("ablytest: encode JSON: %v", err))
		}
	}
	w.Header().Set("Content-Type", typ)
	w.WriteHeader(status)
	w.Write(out)
}

// normalize turns the answer into maps, slices, strings and integers, which the
// msgpack encoder writes as Ably does (a code is an integer, not a float).
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		panic(err)
	}
	return integers(out)
}

func integers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, x := range v {
			v[k] = integers(x)
		}
	case []any:
		for i, x := range v {
			v[i] = integers(x)
		}
	}
	return v
}

func msgpackHandle() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.RawToString = true
	h.WriteExt = true
	h.MapType = reflect.TypeOf(map[string]any(nil))
	return h
}

// parse decodes a publish request, JSON or msgpack as its Content-Type says.
func parse(r *http.Request, body []byte) (*publish, *errorInfo) {
	path := r.URL.EscapedPath()
	var channel string
	batch := path == "/messages"
	if !batch {
		rest, ok := strings.CutPrefix(path, "/channels/")
		if !ok {
			return nil, failf(http.StatusNotFound, CodeNotFound, "no such resource %s", path)
		}
		escaped, ok := strings.CutSuffix(rest, "/messages")
		if !ok || strings.Contains(escaped, "/") {
			return nil, failf(http.StatusNotFound, CodeNotFound, "no such resource %s", path)
		}
		var err error
		if channel, err = url.PathUnescape(escaped); err != nil {
			return nil, failf(http.StatusBadRequest, CodeInvalidChannel, "invalid channel name in path: %v", err)
		}
	}
	typ, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var v any
	switch typ {
	case mimeJSON:
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, failf(http.StatusBadRequest, CodeInvalidBody, "invalid JSON body: %v", err)
		}
	case mimeMsgpack:
		if err := codec.NewDecoderBytes(body, msgpackHandle()).Decode(&v); err != nil {
			return nil, failf(http.StatusBadRequest, CodeInvalidBody, "invalid msgpack body: %v", err)
		}
	default:
		return nil, failf(http.StatusBadRequest, CodeInvalidBody, "unsupported Content-Type %q", r.Header.Get("Content-Type"))
	}
	if !batch {
		msgs, err := messages(v)
		if err != nil {
			return nil, err
		}
		return &publish{specs: []spec{{channels: []string{channel}, msgs: msgs}}}, nil
	}
	var specs []spec
	for _, raw := range list(v) {
		obj, ok := raw.(map[string]any)
		if !ok {
			return nil, failf(http.StatusBadRequest, CodeInvalidBody, "a batch spec must be an object")
		}
		var sp spec
		for _, c := range list(obj["channels"]) {
			name, ok := c.(string)
			if !ok {
				return nil, failf(http.StatusBadRequest, CodeInvalidBody, "channel names must be strings")
			}
			sp.channels = append(sp.channels, name)
		}
		if len(sp.channels) == 0 {
			return nil, failf(http.StatusBadRequest, CodeInvalidBody, "a batch spec needs channels")
		}
		msgs, err := messages(obj["messages"])
		if err != nil {
			return nil, err
		}
		sp.msgs = msgs
		specs = append(specs, sp)
	}
	if len(specs) == 0 {
		return nil, failf(http.StatusBadRequest, CodeInvalidBody, "a batch request needs at least one spec")
	}
	return &publish{batch: true, specs: specs}, nil
}

// list is v as a list: itself when an array, else a list of one (nil for nothing).
func list(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	}
	return []any{v}
}

// messages decodes one message object or an array of them.
func messages(v any) ([]Message, *errorInfo) {
	var out []Message
	for _, raw := range list(v) {
		obj, ok := raw.(map[string]any)
		if !ok {
			return nil, failf(http.StatusBadRequest, CodeInvalidBody, "a message must be an object")
		}
		var m Message
		for field, dst := range map[string]*string{"name": &m.Name, "id": &m.ID, "encoding": &m.Encoding, "clientId": &m.ClientID} {
			switch x := obj[field].(type) {
			case nil:
			case string:
				*dst = x
			default:
				return nil, failf(http.StatusBadRequest, CodeInvalidBody, "message %s must be a string", field)
			}
		}
		switch d := obj["data"].(type) {
		case nil:
		case string:
			m.Data = d
		case []byte:
			m.Data = string(d)
		default:
			return nil, failf(http.StatusBadRequest, CodeInvalidData, "message data must be a string or binary, got %T; encode objects as JSON text with encoding \"json\"", d)
		}
		if extras, ok := obj["extras"]; ok && extras != nil {
			b, err := json.Marshal(extras)
			if err != nil {
				return nil, failf(http.StatusBadRequest, CodeInvalidBody, "invalid extras: %v", err)
			}
			m.Extras = string(b)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, failf(http.StatusBadRequest, CodeInvalidBody, "no messages to publish")
	}
	return out, nil
}
