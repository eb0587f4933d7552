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

func (s *storing) remove(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.jobs, j)
}

// keepAlive marks every waiting job's messages as in progress.
func (s *storing) keepAlive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for j := range s.jobs {
		for _, src := range j.sources {
			_ = src.Msg.InProgress()
		}
	}
}
