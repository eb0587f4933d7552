package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/liverelay/liverelay/internal/broker"
)

// ServeNATSArg is the argument of `worker bench` that makes it the benchmark's
// JetStream server (`worker bench serve-nats DIR SYNC`) instead of a benchmark.
const ServeNATSArg = "serve-nats"

// ServeNATS runs the embedded JetStream server with its store in dir and the fsync
// policy sync, writes its client URL and a newline to stdout, and serves until ctx
// ends.
func ServeNATS(ctx context.Context, dir, sync string, stdout io.Writer) error {
	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: dir, Sync: sync}, zap.NewNop())
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	if _, err := fmt.Fprintln(stdout, srv.ClientURL()); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// natsServer is the benchmark's JetStream server, run as a process of its own so that
// its CPU time is read apart from the load generator's, the provider's and the
// worker's.
type natsServer struct {
	cmd    *exec.Cmd
	url    string
	stderr bytes.Buffer
}

func startNATS(ctx context.Context, exe, dir, sync string) (*natsServer, error) {
	s := &natsServer{cmd: exec.Command(exe, "bench", ServeNATSArg, dir, sync)}
	s.cmd.Stderr = &s.stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the benchmark
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the JetStream server: %w", err)
	}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(l)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case s.url = <-line:
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	if !strings.HasPrefix(s.url, "nats://") {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		return nil, fmt.Errorf("the JetStream server did not start: %s", lastLines(s.stderr.String(), 5))
	}
	return s, nil
}

func (s *natsServer) pid() int { return s.cmd.Process.Pid }

// stop ends the server with SIGTERM, as the worker's own stop does.
func (s *natsServer) stop() error {
	if s.cmd.ProcessState != nil {
		return nil
	}
	return terminate(s.cmd, "the JetStream server", &s.stderr)
}
