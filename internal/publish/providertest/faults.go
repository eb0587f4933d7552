package providertest

import "sync"

// Faults scripts a fake's answers: the fault given to FailNext for the next n
// requests, then whatever the script decides. F is the fake's fault type, whose zero
// value lets a request through; R is what a script is shown of a request. The zero
// Faults lets every request through. All its methods are safe for concurrent use.
type Faults[F, R any] struct {
	mu     sync.Mutex
	n      int
	next   F
	script func(n int64, req R) F
}

// FailNext makes the next n requests answer f.
func (fs *Faults[F, R]) FailNext(n int, f F) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.n, fs.next = n, f
}

// SetScript decides the fate of every request from now on (nil removes the script).
// FailNext, while it lasts, takes precedence.
func (fs *Faults[F, R]) SetScript(script func(n int64, req R) F) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.script = script
}

// Next returns the answer to request n (counting from 1), which carries req. The
// script runs outside the lock, so it may block or call back into the fake.
func (fs *Faults[F, R]) Next(n int64, req R) F {
	fs.mu.Lock()
	if fs.n > 0 {
		fs.n--
		f := fs.next
		fs.mu.Unlock()
		return f
	}
	script := fs.script
	fs.mu.Unlock()
	if script == nil {
		var none F
		return none
	}
	return script(n, req)
}
