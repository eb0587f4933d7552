// Package graceful runs an HTTP server until its context ends, then shuts it down
// within a deadline, so that requests in flight are answered rather than cut off.
package graceful

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Serve serves srv on ln until ctx is done; then it stops taking requests and waits up
// to timeout for those in flight, closing what is left after that. It returns nil
// after a clean shutdown, and otherwise an error naming what (say "the ingest") and
// ln's address. Serve closes ln.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration, what string) error {
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve %s on %s: %w", what, addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	shutdownErr := srv.Shutdown(shutdownCtx)
	if shutdownErr != nil {
		shutdownErr = errors.Join(shutdownErr, srv.Close())
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s on %s: %w", what, addr, err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("shut down %s on %s: %w", what, addr, shutdownErr)
	}
	return nil
}
