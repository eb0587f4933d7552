package ablytest

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DedupWindow is how long Ably remembers an idempotency key: a publish that repeats a
// key within it is accepted and not delivered; after it, the key is new again.
const DedupWindow = 2 * time.Minute

// idempotencyKey reads the client-supplied ids of one publish to one channel (one
// request's array, or one batch spec's messages) as Ably does:
//
//   - no message has an id: the publish has no key, and is never dropped;
//   - an id <base>:<idx> stands for the key <base>, and idx must be the message's
//     zero-based position in the publish's array (so a message published alone must
//     carry <base>:0): the messages of one publish share one key, the base;
//   - a message published alone may carry an id of another form, which is its key;
//   - anything else is refused with 40031 (HTTP 400): an array where some messages
//     have no id, where ids are not <base>:<idx>, or where bases differ or positions
//     do not match.
func idempotencyKey(msgs []Message) (string, *errorInfo) {
	withID := 0
	for _, m := range msgs {
		if m.ID != "" {
			withID++
		}
	}
	switch {
	case withID == 0:
		return "", nil
	case withID < len(msgs):
		return "", failf(http.StatusBadRequest, CodeInvalidID, "Client-specified message id cannot be empty (%d of %d messages have one)", withID, len(msgs))
	}
	var key string
	for i, m := range msgs {
		base, idx, indexed := splitID(m.ID)
		switch {
		case !indexed && len(msgs) == 1:
			return m.ID, nil
		case !indexed || idx != i || (i > 0 && base != key):
			return "", failf(http.StatusBadRequest, CodeInvalidID,
				"Client-specified message ids do not match the required format <base>:<index of the message in the publish> (message %d has id %q)", i, m.ID)
		case i == 0:
			key = base
		}
	}
	return key, nil
}

// splitID splits <base>:<idx>, idx a decimal number written without sign or leading
// zeros; indexed is false for an id of any other form.
func splitID(id string) (base string, idx int, indexed bool) {
	cut := strings.LastIndexByte(id, ':')
	if cut <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(id[cut+1:])
	if err != nil || n < 0 || strconv.Itoa(n) != id[cut+1:] {
		return "", 0, false
	}
	return id[:cut], n, true
}

// deliver records the messages of one accepted publish to one channel, unless the
// publish repeats an idempotency key of that channel seen within DedupWindow: then
// the publish was accepted all the same, but nothing is delivered.
func (s *Server) deliver(channel, key string, msgs []Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if key != "" {
		k := channel + "\x00" + key
		if first, ok := s.seen[k]; ok && now.Sub(first) < DedupWindow {
			s.duplicates.Add(int64(len(msgs)))
			return
		}
		s.seen[k] = now
	}
	kept := make([]Message, len(msgs))
	for i, m := range msgs {
		m.Channel, m.Received = channel, now
		kept[i] = m
	}
	s.messages.Add(kept...) // under s.mu, so messages keep the order of seen
}
