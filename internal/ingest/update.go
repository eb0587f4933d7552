package ingest

import (
	"errors"
	"net/http"
	"time"

	"github.com/liverelay/liverelay/internal/event"
)

// updates turns every trigger of a request into a version 1 change event of its
// channel, its data read as Wagtail Live's {"renders": {...}, "removals": [...]}. One
// trigger that is not an update refuses the whole request. The events' revisions
// stay as the data gives them, zero when it gives none, for the journal to stamp.
func updates(ts []trigger, now time.Time) ([]event.Event, *refusal) {
	out := make([]event.Event, len(ts))
	for i, t := range ts {
		ev, err := event.DecodeUpdate(t.Channel, []byte(t.Data))
		if err != nil {
			detail := err.Error()
			var e *event.Error
			if errors.As(err, &e) {
				detail = e.Detail
			}
			return nil, refuse(http.StatusBadRequest, "%sdata is not a Wagtail Live update {\"renders\": {...}, \"removals\": [...]}: %s", where(t.Index), detail)
		}
		ev.EmittedAt = now
		out[i] = ev
	}
	return out, nil
}
