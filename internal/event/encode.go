package event

import (
	"sort"
	"strconv"
	"time"
)

// Append appends ev as a version 1 event in compact JSON, renders in order, HTML not
// escaped. Decode(Append(nil, ev)) gives ev back.
func Append(dst []byte, ev Event) []byte {
	dst = append(dst, `{"v":1,"channel":`...)
	dst = AppendString(dst, ev.Channel)
	dst = append(dst, `,"renders":`...)
	dst = AppendRenders(dst, ev.Renders)
	dst = append(dst, `,"removals":`...)
	dst = AppendRemovals(dst, ev.Removals)
	if ev.Revision != 0 {
		dst = append(dst, `,"revision":`...)
		dst = strconv.AppendInt(dst, ev.Revision, 10)
	}
	if len(ev.PostRevisions) > 0 {
		ids := make([]string, 0, len(ev.PostRevisions))
		for id := range ev.PostRevisions {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		dst = append(dst, `,"post_revisions":{`...)
		for i, id := range ids {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, id)
			dst = append(dst, ':')
			dst = strconv.AppendInt(dst, ev.PostRevisions[id], 10)
		}
		dst = append(dst, '}')
	}
	if !ev.EmittedAt.IsZero() {
		dst = append(dst, `,"emitted_at":"`...)
		dst = ev.EmittedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}
