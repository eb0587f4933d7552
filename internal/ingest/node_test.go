package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
)

// nodeClientDir installs Pusher's official Node library, as pinned by
// testdata/node/package-lock.json, into a folder of the user's cache named after the
// lock file's hash (once; `npm ci --offline` from npm's cache first, then from the
// registry), and returns the folder, which also holds trigger.js. It skips the test
// when node or npm is missing.
func nodeClientDir(t *testing.T) (dir, node string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: Pusher's Node client cannot be tested")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is not installed: Pusher's Node client cannot be tested")
	}
	files := map[string][]byte{}
	sum := sha256.New()
	for _, name := range []string{"package.json", "package-lock.json", "trigger.js"} {
		b, err := os.ReadFile(filepath.Join("testdata", "node", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
		sum.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	root := filepath.Join(cache, "liverelay", "ingest-node")
	dir = filepath.Join(root, hex.EncodeToString(sum.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "pusher", "package.json")); err == nil {
		return dir, node
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(root, "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out []byte
	for _, args := range [][]string{{"ci", "--offline"}, {"ci"}} {
		cmd := exec.CommandContext(ctx, npm, append(args, "--no-audit", "--no-fund", "--ignore-scripts")...)
		cmd.Dir = tmp
		if out, err = cmd.CombinedOutput(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("npm ci (offline, then online) of Pusher's Node client failed: %v\n%s", err, out)
	}
	// Another test process may have installed it meanwhile: either copy will do.
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "node_modules", "pusher", "package.json")); serr != nil {
			t.Fatalf("keep the install: %v", err)
		}
	}
	return dir, node
}

// Pusher's official Node library triggers into the ingest as into Pusher: events to
// one and several channels and a batch are stored as the updates it sent, and
// refusals come back to it with Pusher's status and message.
func TestNodeClient(t *testing.T) {
	dir, node := nodeClientDir(t)
	store := &fakeStore{}
	h, err := NewHandler(Config{Credentials: testCreds, EventName: "live-page-update", MaxBytes: 64 << 10},
		store, prometheus.NewRegistry(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(startServer(t, h))

	post := map[string]any{"renders": map[string]any{"p1": map[string]any{"show": true, "content": `<div class="live-post"><p>Kick-off "now"</p></div>`}}, "removals": []string{}}
	// Larger than Pusher's 10 KB: the Node library sends it, and the ingest takes it.
	big := map[string]any{"renders": map[string]any{"long": map[string]any{"show": true, "content": strings.Repeat("<p>minute by minute</p>", 1000)}}, "removals": []string{}}
	removal := map[string]any{"renders": map[string]any{}, "removals": []string{"p0"}}
	calls := []map[string]any{
		{"channels": "live-blog-2026", "event": "live-page-update", "data": post},
		{"channels": []string{"a", "b"}, "event": "live-page-update", "data": removal},
		{"batch": []map[string]any{{"channel": "x", "name": "live-page-update", "data": post}, {"channel": "y", "name": "live-page-update", "data": removal}}},
		{"channels": "c", "event": "client-typing", "data": post},
		{"channels": "c", "event": "live-page-update", "data": post, "secret": "wrong"},
		{"channels": "c", "event": "live-page-update", "data": map[string]any{"text": "hi"}},
		{"channels": "big", "event": "live-page-update", "data": big},
	}
	want := []struct {
		status int
		body   string
	}{
		{200, "{}"}, {200, "{}"}, {200, "{}"},
		{400, `event name "client-typing" is not accepted`},
		{401, "Invalid signature"},
		{400, "data is not a Wagtail Live update"},
		{200, "{}"},
	}
	in, _ := json.Marshal(calls)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "trigger.js")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(), "INGEST_APP_ID="+testCreds.AppID, "INGEST_KEY="+testCreds.Key, "INGEST_SECRET="+testCreds.Secret,
		"INGEST_HOST="+base.Hostname(), "INGEST_PORT="+base.Port())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node trigger.js: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("node printed %d results, want %d:\n%s\n%s", len(lines), len(want), out, stderr.String())
	}
	for i, line := range lines {
		var got struct {
			Status int    `json:"status"`
			Body   string `json:"body"`
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("result %d %q: %v", i, line, err)
		}
		if got.Status != want[i].status || !strings.Contains(got.Body, want[i].body) {
			t.Errorf("call %d: %d %q, want %d with %q", i, got.Status, got.Body, want[i].status, want[i].body)
		}
	}

	evs, _ := store.stored()
	var channels []string
	for _, ev := range evs {
		channels = append(channels, ev.Channel)
	}
	if strings.Join(channels, " ") != "live-blog-2026 a b x y big" {
		t.Fatalf("stored channels %q", channels)
	}
	if r := evs[0].Renders; len(r) != 1 || r[0].Content != `<div class="live-post"><p>Kick-off "now"</p></div>` || !r[0].Show {
		t.Errorf("stored render %+v", r)
	}
	if evs[4].Removals[0] != "p0" {
		t.Errorf("stored batch removal %+v", evs[4])
	}
}
