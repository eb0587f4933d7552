package relay

import (
	"container/heap"
	"time"
)

// schedule is the loop's one timer: a min-heap of channel wake-ups. An entry whose
// generation no longer matches its channel's is stale and skipped.
type schedule []wakeup

type wakeup struct {
	at  time.Time
	ch  *channel
	gen uint64
}

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].at.Before(s[j].at) }
func (s schedule) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s *schedule) Push(x any)        { *s = append(*s, x.(wakeup)) }
func (s *schedule) Pop() any {
	old := *s
	w := old[len(old)-1]
	old[len(old)-1] = wakeup{}
	*s = old[:len(old)-1]
	return w
}

// at schedules a wake-up of c at t, replacing any earlier one.
func (s *schedule) at(c *channel, t time.Time) {
	c.gen++
	heap.Push(s, wakeup{at: t, ch: c, gen: c.gen})
}

// due pops the next live wake-up that is due at now.
func (s *schedule) due(now time.Time) (*channel, bool) {
	for s.Len() > 0 {
		w := (*s)[0]
		if w.gen != w.ch.gen {
			heap.Pop(s)
			continue
		}
		if w.at.After(now) {
			return nil, false
		}
		heap.Pop(s)
		w.ch.gen++
		return w.ch, true
	}
	return nil, false
}

// next is when the next live wake-up is due.
func (s *schedule) next() (time.Time, bool) {
	for s.Len() > 0 {
		w := (*s)[0]
		if w.gen != w.ch.gen {
			heap.Pop(s)
			continue
		}
		return w.at, true
	}
	return time.Time{}, false
}
