package event

// DecodeUpdate reads data as the update Wagtail Live hands a websocket provider,
// `{"renders": {...}, "removals": [...]}`, and returns it as an event of channel. It
// is Decode's scanner and validation: renders keep their order, and the optional
// "revision", "post_revisions" and "emitted_at" are read as in an event. Both
// "renders" and "removals" must be present, as the browser's process_updates needs
// them; a "v" or "channel" inside data is ignored. A failure is always an *Error.
func DecodeUpdate(channel string, data []byte) (Event, error) {
	s := scanner{b: data}
	f := fields{hasV: true, hasChannel: true}
	if err := f.scan(&s); err != nil {
		return Event{}, err
	}
	if err := CheckChannel(channel); err != nil {
		return Event{}, err
	}
	switch {
	case !f.hasRenders:
		return Event{}, invalid(ReasonRenders, `"renders" is missing`)
	case !f.hasRemovals:
		return Event{}, invalid(ReasonRemovals, `"removals" is missing`)
	}
	for _, err := range []*Error{f.rendersErr, f.removalsErr, f.revisionErr, f.emittedErr, f.postRevErr} {
		if err != nil {
			return Event{}, err
		}
	}
	f.ev.Channel = channel
	return f.ev, nil
}
