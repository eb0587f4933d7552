package graceful

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A request in flight when the context ends is answered before Serve returns nil.
func TestServeAnswersInFlightRequestsThenStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, srv, ln, 5*time.Second, "the test server") }()

	answer := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			answer <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		answer <- string(body)
	}()
	<-started
	cancel()
	close(release)
	if got := <-answer; got != "done" {
		t.Errorf("the request in flight got %q, want done", got)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

// A server that cannot serve returns at once with an error naming it and its address.
func TestServeFailureNamesTheServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = Serve(t.Context(), &http.Server{}, ln, time.Second, "the test server")
	if err == nil || !strings.Contains(err.Error(), "serve the test server on "+addr) {
		t.Fatalf("Serve on a closed listener = %v, want an error naming the test server on %s", err, addr)
	}
}
