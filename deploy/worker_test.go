package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/config"
	"github.com/liverelay/liverelay/internal/event"
	"github.com/liverelay/liverelay/internal/publish/pushertest"
	"github.com/liverelay/liverelay/internal/worker"
)

// Known secrets of the worker the test runs; none may reach its logs or endpoints.
const (
	embeddedToken = "tok-5c1d0e9b7a2f4e8b"
	pusherSecret  = "psec-8e2b6f1a9d3c7e05"
	ingestSecret  = "isec-3f9a0c27d1e84b66"
)

// running is one real worker, run in-process with its embedded NATS server (token
// required, listening on every interface) and the fake Pusher, configured the way an
// operator would: environment variables, secrets from files.
type running struct {
	http    string // base URL of /healthz, /readyz, /metrics
	nats    string // client URL of the embedded server
	pusher  *pushertest.Server
	logs    *lockedBuffer
	stopped chan error
	stop    context.CancelFunc
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startWorker(t *testing.T) *running {
	t.Helper()
	dir := t.TempDir()
	for name, v := range map[string]string{"token": embeddedToken, "pusher": pusherSecret, "ingest": ingestSecret} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fake := pushertest.New(t, "4242", "app-key", pusherSecret)
	natsPort, httpPort, ingestPort := freePort(t), freePort(t), freePort(t)
	env := map[string]string{
		"LIVE_EMBEDDED_LISTEN":     "0.0.0.0:" + strconv.Itoa(natsPort),
		"LIVE_EMBEDDED_TOKEN_FILE": filepath.Join(dir, "token"),
		"LIVE_DATA_DIR":            filepath.Join(dir, "data"),
		"LIVE_HTTP_ADDR":           "127.0.0.1:" + strconv.Itoa(httpPort),
		"LIVE_PARTITIONS":          "4",
		"LIVE_WORKER_NAME":         "deploy-test",
		"LIVE_LOG_LEVEL":           "debug",
		"LIVE_PROVIDER":            "pusher",
		"PUSHER_APP_ID":            "4242",
		"PUSHER_APP_KEY":           "app-key",
		"PUSHER_APP_SECRET_FILE":   filepath.Join(dir, "pusher"),
		"PUSHER_HOST":              fake.Host(),
		"PUSHER_SECURE":            "false",
		// The ingest on too, so that its metrics are among those scraped.
		"LIVE_INGEST_ADDR":        "127.0.0.1:" + strconv.Itoa(ingestPort),
		"LIVE_INGEST_APP_ID":      "77",
		"LIVE_INGEST_KEY":         "ingest-key",
		"LIVE_INGEST_SECRET_FILE": filepath.Join(dir, "ingest"),
	}
	cfg := config.Default()
	if err := cfg.LoadEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logs), zapcore.DebugLevel))
	log.Info("liverelay worker starting", zap.Object("config", cfg)) // as worker run logs it
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{
		http: "http://" + cfg.HTTPAddr, nats: "nats://127.0.0.1:" + strconv.Itoa(natsPort),
		pusher: fake, logs: logs, stopped: make(chan error, 1), stop: cancel,
	}
	go func() { r.stopped <- worker.Run(ctx, cfg, "v9.9.9-test", io.Discard, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.stopped:
		case <-time.After(30 * time.Second):
			t.Error("the worker did not stop within 30s")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := r.get(t, "/readyz"); code == http.StatusOK {
			return r
		}
		select {
		case err := <-r.stopped:
			t.Fatalf("the worker stopped: %v\n%s", err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker was not ready within 30s\n%s", logs.String())
		}
	}
}

// get fetches a path of the worker's HTTP server; code 0 when nothing answered.
func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(r.http + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// publish sends one event as the CMS does, presenting the embedded server's token.
func (r *running) publish(t *testing.T, ev event.Event) {
	t.Helper()
	nc, err := broker.Connect(r.nats, "deploy-test", broker.Auth{Token: embeddedToken}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "live.events."+event.Token(ev.Channel), event.Append(nil, ev)); err != nil {
		t.Fatal(err)
	}
}

// metricFamilies parses a /metrics page.
func metricFamilies(t *testing.T, page string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(page))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return families
}

// seriesNames are the names a PromQL query can select from families: a histogram's
// _bucket, _sum and _count, a summary's _sum and _count and its own name.
func seriesNames(families map[string]*dto.MetricFamily) map[string]bool {
	out := map[string]bool{}
	for name, f := range families {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			out[name], out[name+"_sum"], out[name+"_count"] = true, true, true
		default:
			out[name] = true
		}
	}
	return out
}

// grafanaVariables are the dashboard's variables, replaced so the query parses as
// Prometheus receives it: an interval for $__rate_interval and the like, a regexp for
// the others (they only appear in label matchers).
var (
	grafanaInterval = regexp.MustCompile(`\$__\w+`)
	grafanaVariable = regexp.MustCompile(`\$\w+`)
)

// metricNames returns the metrics a PromQL expression selects.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	expr = grafanaVariable.ReplaceAllString(grafanaInterval.ReplaceAllString(expr, "5m"), ".*")
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return nil
	}
	var names []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
			names = append(names, name)
		}
		return nil
	})
	if len(names) == 0 {
		t.Errorf("%s: %q selects no metric", where, expr)
	}
	return names
}

// dashboardQueries returns every query of the dashboard, by panel title.
func dashboardQueries(t *testing.T) map[string][]string {
	t.Helper()
	b := readFile(t, filepath.Join("grafana", "dashboard.json"))
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		q, ok := v.Query.(map[string]any)
		if !ok {
			continue
		}
		// label_values(<metric>, <label>): the metric must exist too.
		if s, _ := q["query"].(string); strings.HasPrefix(s, "label_values(") {
			metric, _, _ := strings.Cut(strings.TrimPrefix(s, "label_values("), ",")
			out["variable "+v.Name] = append(out["variable "+v.Name], strings.TrimSpace(metric))
		}
	}
	return out
}

// One real worker answers every probe path the manifests name, exposes every metric
// the dashboard and the alert rules select, and documents every metric it exposes;
// its logs and endpoints never show a secret it was given.
func TestAgainstARunningWorker(t *testing.T) {
	r := startWorker(t)

	// The embedded server listens beyond loopback, so it wants its token.
	if nc, err := broker.Connect(r.nats, "intruder", broker.Auth{}, zap.NewNop()); err == nil {
		nc.Close()
		t.Error("a client without the token connected to the embedded server")
	}
	r.publish(t, event.Event{Channel: "live-blog-2026", Renders: []event.Render{{ID: "p1", Show: true, Content: "<p>Kick-off!</p>"}},
		Revision: time.Now().UnixMicro(), EmittedAt: time.Now()})
	r.pusher.WaitEvents(t, 1, 30*time.Second)

	// Probes and scrape paths of the manifests.
	paths := []string{"/metrics"}
	pod := readK8s(t)["Deployment"].Spec.Template.Spec
	for _, c := range pod.Containers {
		for _, p := range []*probe{c.ReadinessProbe, c.LivenessProbe} {
			if p != nil {
				paths = append(paths, p.HTTPGet.Path)
			}
		}
	}
	for _, p := range paths {
		if code, body := r.get(t, p); code != http.StatusOK {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}

	// Wait for the backlog and the delivery to show in the metrics.
	var page string
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, page = r.get(t, "/metrics")
		if strings.Contains(page, "liverelay_provider_messages_total 1") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	families := metricFamilies(t, page)
	exposed := seriesNames(families)

	used := map[string]bool{}
	for title, exprs := range dashboardQueries(t) {
		for _, e := range exprs {
			for _, name := range metricNames(t, "dashboard panel "+strconv.Quote(title), e) {
				used[name] = true
				if !exposed[name] {
					t.Errorf("dashboard panel %q uses %s, which the worker does not expose", title, name)
				}
			}
		}
	}
	for _, want := range []string{"liverelay_events_total", "liverelay_provider_messages_total", "liverelay_provider_request_seconds_count",
		"liverelay_delivery_latency_seconds_bucket", "liverelay_partition_pending_messages", "liverelay_dlq_messages",
		"liverelay_dead_letters_total", "liverelay_publish_errors_total", "liverelay_provider_breaker_open", "liverelay_fence_store_lag_seconds"} {
		if !used[want] {
			t.Errorf("the dashboard shows no %s", want)
		}
	}
	alerted := map[string]bool{}
	for _, rule := range alertRules(t) {
		for _, name := range metricNames(t, "alert "+rule.Alert, rule.Expr) {
			alerted[name] = true
			if !exposed[name] {
				t.Errorf("alert %s uses %s, which the worker does not expose", rule.Alert, name)
			}
		}
	}

	// docs/operations.md: its metrics table lists every liverelay metric, and every
	// metric of its alert table has a rule.
	docs := readFile(t, "../docs/operations.md")
	for name := range families {
		if strings.HasPrefix(name, "liverelay_") && !strings.Contains(string(docs), "| `"+name+"` |") {
			t.Errorf("docs/operations.md's metrics table does not list %s", name)
		}
	}
	alertTable := string(docs)
	alertTable = alertTable[strings.Index(alertTable, "| metric | alert when |"):]
	alertTable = alertTable[:strings.Index(alertTable, "\n\n")]
	for _, m := range regexp.MustCompile("(?m)^\\| `(liverelay_[a-z_]+)[^|]*\\| ([^|]*) \\|").FindAllStringSubmatch(alertTable, -1) {
		if m[2] != "—" && !alerted[m[1]] { // — : counted, not alerted on
			t.Errorf("docs/operations.md says to alert on %s; deploy/prometheus/alerts.yml has no rule on it", m[1])
		}
	}

	// A few values that show the new metrics are wired to real state.
	for _, tt := range []struct {
		series string
		want   float64
	}{
		{"liverelay_nats_connected", 1},
		{"liverelay_provider_breaker_open", 0},
		{"liverelay_partitions_owned", 4},
	} {
		if got := value(t, families, tt.series); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.series, got, tt.want)
		}
	}
	if !strings.Contains(page, `liverelay_build_info{go_version="go`) || !strings.Contains(page, `version="v9.9.9-test"`) {
		t.Errorf("build info missing or without its labels:\n%s", grep(page, "liverelay_build_info"))
	}
	if n := len(families["liverelay_partition_pending_messages"].GetMetric()); n != 4 {
		t.Errorf("%d series of liverelay_partition_pending_messages, want one per partition (4)", n)
	}

	// Stop the worker, so its shutdown lines are in the logs too.
	_, readyz := r.get(t, "/readyz")
	r.stop()
	if err := <-r.stopped; err != nil {
		t.Errorf("the worker stopped with %v", err)
	}
	r.stopped <- nil // for the cleanup
	logs := r.logs.String()
	if !strings.Contains(logs, "worker stopped") || !strings.Contains(logs, "embedded NATS JetStream started") {
		t.Fatalf("the logs miss the start or the stop of the worker:\n%s", logs)
	}
	for _, secret := range []string{embeddedToken, pusherSecret, ingestSecret} {
		for where, text := range map[string]string{"the logs": logs, "/metrics": page, "/readyz": readyz} {
			if strings.Contains(text, secret) {
				t.Errorf("%s show the secret %q", where, secret)
			}
		}
	}
}

// value is the value of the one series of a gauge or counter family.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f, ok := families[name]
	if !ok || len(f.GetMetric()) != 1 {
		t.Fatalf("no single series of %s", name)
	}
	m := f.GetMetric()[0]
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func grep(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
