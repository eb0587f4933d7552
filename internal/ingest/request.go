package ingest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
)

// Pusher's limits on a trigger, which the ingest keeps so that a CMS that works with
// the ingest works with Pusher, and the other way round. The size of an event's data
// is the exception: liverelay splits updates, so it takes up to Config.MaxBytes.
const (
	MaxChannels   = 100 // channels of one /events request
	MaxBatch      = 10  // events of one /batch_events request
	MaxChannelLen = 164 // bytes of a channel name
	MaxEventName  = 200 // bytes of an event name
)

var channelName = regexp.MustCompile(`^[-a-zA-Z0-9_=@,.;]+$`)

// trigger is one event of one channel, as a request carries it.
type trigger struct {
	Channel string
	Name    string
	Data    string
	Index   int // position in a batch, named in messages; -1 for /events, whose channels share one event
}

// parseEvents reads the body of POST /apps/{id}/events: one event for each of
// channels (or channel).
func parseEvents(body []byte) ([]trigger, *refusal) {
	var req struct {
		Name     string          `json:"name"`
		Data     json.RawMessage `json:"data"`
		Channels []string        `json:"channels"`
		Channel  string          `json:"channel"`
		SocketID string          `json:"socket_id"` // no reader is excluded: the CMS has no socket
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, refuse(http.StatusBadRequest, "Invalid JSON body: %v", err)
	}
	data, rf := dataString(-1, req.Data)
	if rf != nil {
		return nil, rf
	}
	channels := req.Channels
	if req.Channel != "" {
		channels = append(channels, req.Channel)
	}
	switch {
	case len(channels) == 0:
		return nil, refuse(http.StatusBadRequest, "Missing channels: give channels (a list) or channel")
	case len(channels) > MaxChannels:
		return nil, refuse(http.StatusBadRequest, "Too many channels (%d > %d)", len(channels), MaxChannels)
	}
	out := make([]trigger, len(channels))
	for i, ch := range channels {
		out[i] = trigger{Channel: ch, Name: req.Name, Data: data, Index: -1}
	}
	return out, nil
}

// parseBatch reads the body of POST /apps/{id}/batch_events.
func parseBatch(body []byte) ([]trigger, *refusal) {
	var req struct {
		Batch []struct {
			Channel  string          `json:"channel"`
			Name     string          `json:"name"`
			Data     json.RawMessage `json:"data"`
			SocketID string          `json:"socket_id"`
		} `json:"batch"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, refuse(http.StatusBadRequest, "Invalid JSON body: %v", err)
	}
	switch {
	case len(req.Batch) == 0:
		return nil, refuse(http.StatusBadRequest, "Missing batch: give a list of {channel, name, data}")
	case len(req.Batch) > MaxBatch:
		return nil, refuse(http.StatusBadRequest, "Batch too large (%d > %d events)", len(req.Batch), MaxBatch)
	}
	out := make([]trigger, len(req.Batch))
	for i, e := range req.Batch {
		data, rf := dataString(i, e.Data)
		if rf != nil {
			return nil, rf
		}
		out[i] = trigger{Channel: e.Channel, Name: e.Name, Data: data, Index: i}
	}
	return out, nil
}

// dataString reads data, which Pusher's clients send as a string holding the
// JSON-encoded payload.
func dataString(i int, raw json.RawMessage) (string, *refusal) {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return "", refuse(http.StatusBadRequest, "%sdata must be a string: the JSON-encoded update", where(i))
	}
	return s, nil
}

// check applies the limits to every trigger of a request, before any is stored.
func check(ts []trigger, eventName string, maxData int) *refusal {
	for _, t := range ts {
		i := t.Index
		switch {
		case len(t.Channel) > MaxChannelLen:
			return refuse(http.StatusBadRequest, "%schannel name too long (%d > %d characters)", where(i), len(t.Channel), MaxChannelLen)
		case !channelName.MatchString(t.Channel):
			return refuse(http.StatusBadRequest, "%sinvalid channel name %q: use only a-z A-Z 0-9 and - _ = @ , . ;", where(i), t.Channel)
		case t.Name == "" || len(t.Name) > MaxEventName:
			return refuse(http.StatusBadRequest, "%sevent name must be 1 to %d characters", where(i), MaxEventName)
		case t.Name != eventName:
			return refuse(http.StatusBadRequest, "%sevent name %q is not accepted: liverelay takes only %q", where(i), truncate(t.Name), eventName)
		case len(t.Data) > maxData:
			return refuse(http.StatusRequestEntityTooLarge, "%sdata content of this event exceeds the allowed maximum (%d bytes)", where(i), maxData)
		}
	}
	return nil
}

// where names event i of a batch in a message; -1 is the one event of /events.
func where(i int) string {
	if i < 0 {
		return ""
	}
	return "Event " + strconv.Itoa(i) + ": "
}

func truncate(s string) string {
	if len(s) <= 60 {
		return s
	}
	return s[:60] + "…"
}
