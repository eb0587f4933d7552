package health

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// With profiling on, the profiles are served but the command line is not: secrets
// given as flags would be readable by anyone who reaches the address.
func TestProfilingHidesTheCommandLine(t *testing.T) {
	s, base := start(t, prometheus.NewRegistry())
	s.EnableProfiling()
	code, body := get(t, base+"/debug/pprof/cmdline")
	if code != http.StatusNotFound {
		t.Errorf("/debug/pprof/cmdline answered %d, want 404", code)
	}
	if strings.Contains(body, os.Args[0]) {
		t.Errorf("/debug/pprof/cmdline shows the command line: %q", body)
	}
	if code, body := get(t, base+"/debug/pprof/"); code != http.StatusOK || strings.Contains(body, "cmdline") {
		t.Errorf("/debug/pprof/ answered %d; it must not link the command line:\n%s", code, body)
	}
	if code, _ := get(t, base+"/debug/pprof/heap?debug=1"); code != http.StatusOK {
		t.Errorf("/debug/pprof/heap answered %d, want 200", code)
	}
}
