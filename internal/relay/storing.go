package relay

import "sync"

// storing holds the published jobs whose acks wait for the revision fence to store
// their record. They are out of the loop's hands (their channel has moved on), so the
// loop's keep-alive reaches them here: a slow store must not make JetStream deliver
// published messages again.
type storing struct {
	mu   sync.Mutex
	jobs map[*job]struct{}
}

func (s *storing) add(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobs == nil {
		s.jobs = map[*job]struct{}{}
	}
	s.jobs[j] = struct{}{}
}

// remove reports whether j was still waiting (not handed back meanwhile).
func (s *storing) remove(j *job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.jobs[j]
	delete(s.jobs, j)
	return ok
}

// keepAlive marks every waiting job's messages as in progress and returns how many.
func (s *storing) keepAlive() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for j := range s.jobs {
		for _, src := range j.sources {
			_ = src.Msg.InProgress()
		}
		n += len(j.sources)
	}
	return n
}

// count returns how many waiting jobs belong to partition p.
func (s *storing) count(p int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for j := range s.jobs {
		if j.ch.partition == p {
			n++
		}
	}
	return n
}

// take removes the waiting jobs of partition p and returns their messages: their
// record was not stored in time, and they are handed back instead of acked.
func (s *storing) take(p int) []Input {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Input
	for j := range s.jobs {
		if j.ch.partition == p {
			out = append(out, j.sources...)
			delete(s.jobs, j)
		}
	}
	return out
}
