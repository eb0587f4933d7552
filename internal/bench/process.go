package bench

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// stopWait is how long a process is given to exit after SIGTERM before it is killed.
const stopWait = 30 * time.Second

// terminate sends SIGTERM to the process cmd started (what names it in errors) and
// waits for it to exit; it kills it after stopWait. An exit other than a clean one is
// an error with the last lines of its stderr.
func terminate(cmd *exec.Cmd, what string, stderr fmt.Stringer) error {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s exited with %v: %s", what, err, lastLines(stderr.String(), 5))
		}
		return nil
	case <-time.After(stopWait):
		_ = cmd.Process.Kill()
		return fmt.Errorf("%s did not stop within %v", what, stopWait)
	}
}

// lastLines is the last n lines of s, for an error.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
