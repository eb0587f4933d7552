// Package ingesttest runs Pusher's official Node server library (the `pusher` npm
// package, pinned by node/package-lock.json) against a liverelay ingest in tests, as
// a CMS using it would trigger.
package ingesttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

//go:embed node/package.json node/package-lock.json node/trigger.js
var nodeFiles embed.FS

// Credentials are what the Node client is given.
type Credentials struct {
	AppID, Key, Secret string
}

// Call is one call of the Node client: Trigger when Batch is empty, TriggerBatch
// otherwise. Data is JSON-encoded by the client, as a CMS's object would be.
type Call struct {
	Channels any          `json:"channels,omitempty"` // a channel name or a list of them
	Event    string       `json:"event,omitempty"`
	Data     any          `json:"data,omitempty"`
	Batch    []BatchEvent `json:"batch,omitempty"`
	Secret   string       `json:"secret,omitempty"` // signs this call with another secret
}

// BatchEvent is one event of a TriggerBatch call.
type BatchEvent struct {
	Channel string `json:"channel"`
	Name    string `json:"name"`
	Data    any    `json:"data"`
}

// Result is how a call ended: the HTTP status and body the client reports (status 0
// for an error without one).
type Result struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// Node makes calls, in order, with Pusher's Node library pointed at base
// (http://host:port), and returns their results. It skips the test when node or npm
// is missing.
func Node(t testing.TB, base string, creds Credentials, calls []Call) []Result {
	t.Helper()
	dir, node := install(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(calls)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "trigger.js")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(), "INGEST_APP_ID="+creds.AppID, "INGEST_KEY="+creds.Key, "INGEST_SECRET="+creds.Secret,
		"INGEST_HOST="+u.Hostname(), "INGEST_PORT="+u.Port())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node trigger.js: %v\n%s", err, stderr.String())
	}
	var results []Result
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("node printed %q: %v\n%s", line, err, stderr.String())
		}
		results = append(results, r)
	}
	if len(results) != len(calls) {
		t.Fatalf("node printed %d results for %d calls:\n%s\n%s", len(results), len(calls), out, stderr.String())
	}
	return results
}

// install installs the pinned library into a folder of the user's cache named after
// the files' hash (once; `npm ci --offline` from npm's cache first, then from the
// registry), and returns the folder, which also holds trigger.js, and node's path.
func install(t testing.TB) (dir, node string) {
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
		b, err := nodeFiles.ReadFile("node/" + name)
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
