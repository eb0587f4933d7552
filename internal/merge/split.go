package merge

import "github.com/liverelay/liverelay/internal/event"

// framing is the size of {"renders":{},"removals":[]}.
const framing = len(`{"renders":{},"removals":[]}`)

// Split encodes u as one or more messages of at most max bytes each, for a provider
// that limits the size of one message. Applied in order, the messages have the same
// effect in a browser as u: renders keep their order across messages and removals come
// last. A render that cannot fit a message on its own is left out and returned in
// tooBig, for the caller to dead-letter.
func (u *Update) Split(max int) (msgs [][]byte, tooBig []event.Render) {
	if u.approx+framing <= max { // the common case: encode once and measure the bytes
		if whole := u.AppendJSON(make([]byte, 0, u.approx+framing+u.approx/8)); len(whole) <= max {
			return [][]byte{whole}, nil
		}
	}
	renders := u.Renders()
	removals := u.Removals()

	var part []event.Render
	partSize := framing
	flush := func() {
		if len(part) > 0 {
			msgs = append(msgs, appendData(nil, part, nil))
			part, partSize = nil, framing
		}
	}
	for _, r := range renders {
		size := event.RenderSize(r)
		if framing+size > max {
			tooBig = append(tooBig, r)
			continue
		}
		add := size
		if len(part) > 0 {
			add++ // comma
		}
		if partSize+add > max {
			flush()
			add = size
		}
		part = append(part, r)
		partSize += add
	}

	// Removals go with the last renders when they fit, else into messages of their own.
	// Post ids are at most event.MaxPostIDLen bytes, far below any provider's limit,
	// so every removal fits a message of its own.
	var ids []string
	for _, id := range removals {
		add := event.StringSize(id)
		if len(ids) > 0 {
			add++ // comma
		}
		if partSize+add > max {
			msgs = append(msgs, appendData(nil, part, ids))
			part, ids, partSize = nil, nil, framing
			add = event.StringSize(id)
		}
		ids = append(ids, id)
		partSize += add
	}
	if len(part) > 0 || len(ids) > 0 {
		msgs = append(msgs, appendData(nil, part, ids))
	}
	return msgs, tooBig
}
