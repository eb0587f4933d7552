package providertest

import "context"

// Controls are what a fake's tests call on it besides its own methods: Requests,
// Rejected, Connections and SetDelay of its Server's Counts, FailNext and SetScript
// of its Faults, and Wait on its Recorder. A fake embeds the Controls NewControls
// returns, so that its tests call them on the fake itself. T is what the fake
// records, F its fault type and R what a script is shown of a request. All its
// methods are safe for concurrent use.
type Controls[T, F, R any] struct {
	*Counts
	recorder *Recorder[T]
	faults   *Faults[F, R]
}

// NewControls returns the controls of a fake that serves with srv, records into
// recorder and answers as faults says.
func NewControls[T, F, R any](srv *Server, recorder *Recorder[T], faults *Faults[F, R]) Controls[T, F, R] {
	return Controls[T, F, R]{Counts: &srv.Counts, recorder: recorder, faults: faults}
}

// FailNext makes the next n requests answer as f says, without recording anything.
func (c Controls[T, F, R]) FailNext(n int, f F) { c.faults.FailNext(n, f) }

// SetScript decides the fate of every request from now on (nil removes the script).
// FailNext, while it lasts, takes precedence.
func (c Controls[T, F, R]) SetScript(script func(n int64, req R) F) { c.faults.SetScript(script) }

// Wait blocks until cond holds for what the fake accepted, or ctx ends. cond must
// not modify the slice, which is shared.
func (c Controls[T, F, R]) Wait(ctx context.Context, cond func([]T) bool) error {
	return c.recorder.Wait(ctx, cond)
}
