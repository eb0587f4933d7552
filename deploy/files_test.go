package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/liverelay/liverelay/internal/broker"
	"github.com/liverelay/liverelay/internal/config"
)

// Every YAML and JSON file in deploy/ parses (each document of a YAML stream), and
// every NATS configuration parses with nats-server's own parser.
func TestEveryFileParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch filepath.Ext(path) {
		case ".yml", ".yaml":
			dec := yaml.NewDecoder(bytes.NewReader(b))
			for {
				var doc any
				if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Errorf("%s: %v", path, err)
					break
				}
			}
		case ".json":
			var doc any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		case ".conf":
			t.Setenv("NATS_PASSWORD", "test")
			if _, err := server.ProcessConfigFile(path); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d files found in deploy/", n)
	}
}

// readFile returns the contents of the file at path, failing the test if it cannot.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// yamlFile decodes one YAML file into v, failing the test if it cannot.
func yamlFile(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// compose is the part of docker-compose.yml the tests read.
type compose struct {
	Services map[string]struct {
		Image           string         `yaml:"image"`
		Build           *composeBuild  `yaml:"build"`
		Environment     map[string]any `yaml:"environment"`
		Volumes         []string       `yaml:"volumes"`
		Secrets         []string       `yaml:"secrets"`
		StopGracePeriod string         `yaml:"stop_grace_period"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

const composeDir = "compose"

func readCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	yamlFile(t, filepath.Join(composeDir, "docker-compose.yml"), &c)
	return c
}

// workerEnvs returns the environment of every liverelay worker the compose file runs.
func (c compose) workerEnvs() map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, s := range c.Services {
		if !strings.HasPrefix(s.Image, "liverelay") {
			continue
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = strings.TrimSpace(strings.Trim(yamlScalar(v), `"`))
		}
		out[name] = env
	}
	return out
}

func yamlScalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// loadSettings reads env as the worker would, each file of a secret's _FILE variable
// standing in for the mounted one, and validates it: every variable must be a setting
// (or the _FILE of a secret) and every value valid.
func loadSettings(t *testing.T, where string, env map[string]string) config.Config {
	t.Helper()
	dir := t.TempDir()
	lookup := map[string]string{}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
		if strings.HasSuffix(k, "_FILE") {
			local := filepath.Join(dir, strings.ToLower(k))
			if err := os.WriteFile(local, []byte("stand-in-secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			v = local
		}
		lookup[k] = v
	}
	settings := map[string]bool{}
	for _, s := range config.Settings() {
		settings[s.Env] = true
		if s.Secret {
			settings[s.Env+"_FILE"] = true
		}
	}
	for k := range env {
		if !settings[k] {
			t.Errorf("%s sets %s, which is no setting of the worker", where, k)
		}
	}
	if err := config.CheckEnv(environ); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	cfg := config.Default()
	if err := cfg.LoadEnv(func(k string) (string, bool) { v, ok := lookup[k]; return v, ok }); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("%s: the worker would refuse these settings: %v", where, err)
	}
	return cfg
}

func TestCompose(t *testing.T) {
	c := readCompose(t)
	workers := c.workerEnvs()
	if len(workers) < 2 {
		t.Fatalf("%d liverelay workers, want 2 or more", len(workers))
	}
	for name, env := range workers {
		cfg := loadSettings(t, "compose service "+name, env)
		s := c.Services[name]
		if cfg.Replicas != 3 || cfg.Embedded() {
			t.Errorf("%s: LIVE_STREAM_REPLICAS=%d with LIVE_NATS_URL=%q, want 3 replicas on the NATS cluster", name, cfg.Replicas, cfg.NATSURL)
		}
		if s.Build == nil {
			t.Errorf("%s is not built from the Dockerfile", name)
		} else if _, err := os.Stat(filepath.Join(composeDir, s.Build.Context, s.Build.Dockerfile)); err != nil {
			t.Errorf("%s: build: %v", name, err)
		}
		grace, err := time.ParseDuration(s.StopGracePeriod)
		if err != nil || grace <= cfg.ShutdownTimeout {
			t.Errorf("%s: stop_grace_period %q, want more than LIVE_SHUTDOWN_TIMEOUT=%v", name, s.StopGracePeriod, cfg.ShutdownTimeout)
		}
		for k, v := range env {
			if strings.HasSuffix(k, "_FILE") && !slices.ContainsFunc(s.Secrets, func(sec string) bool { return v == "/run/secrets/"+sec }) {
				t.Errorf("%s: %s=%s is no secret mounted in the service", name, k, v)
			}
		}
		if cfg.NATSUser == "" || !strings.Contains(strings.Join(slices.Collect(maps.Keys(env)), " "), "LIVE_NATS_PASSWORD_FILE") {
			t.Errorf("%s: does not log in to NATS with a password read from a file", name)
		}
	}
	// Every file the stack mounts or reads is in the repository.
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, ".") {
				continue // a named volume
			}
			if _, err := os.Stat(filepath.Join(composeDir, src)); err != nil {
				t.Errorf("%s mounts %s: %v", name, src, err)
			}
		}
	}
	for name, s := range c.Secrets {
		if _, err := os.Stat(filepath.Join(composeDir, s.File)); err != nil {
			t.Errorf("secret %s: %v", name, err)
		}
	}

	// Three NATS nodes, clustered, with JetStream fsyncing every write.
	nodes := 0
	t.Setenv("NATS_PASSWORD", "test")
	for name, s := range c.Services {
		if !strings.HasPrefix(s.Image, "nats:") {
			continue
		}
		nodes++
		var conf string
		for _, v := range s.Volumes {
			if src, dst, _ := strings.Cut(v, ":"); strings.HasPrefix(dst, "/etc/nats/nats.conf") {
				conf = filepath.Join(composeDir, src)
			}
		}
		opts, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !opts.JetStream || !opts.SyncAlways || len(opts.Routes) != 3 || opts.Cluster.Name == "" || opts.ServerName != name || len(opts.Users) == 0 {
			t.Errorf("%s (%s): jetstream %v, sync always %v, %d routes, cluster %q, server name %q, %d users; want JetStream, sync always, 3 routes, a cluster, the service's name, a user",
				name, conf, opts.JetStream, opts.SyncAlways, len(opts.Routes), opts.Cluster.Name, opts.ServerName, len(opts.Users))
		}
	}
	if nodes != 3 {
		t.Errorf("%d NATS nodes, want 3", nodes)
	}

	// Prometheus scrapes every worker on its LIVE_HTTP_ADDR port and loads the rules.
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	yamlFile(t, filepath.Join(composeDir, "prometheus", "prometheus.yml"), &prom)
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("Prometheus scrapes %s, the worker serves /metrics", sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for name, env := range workers {
		want := name + ":" + port(env["LIVE_HTTP_ADDR"])
		if !slices.Contains(targets, want) {
			t.Errorf("Prometheus does not scrape %s (targets %v)", want, targets)
		}
	}
	mounted := map[string]string{} // container path → file in deploy/
	for _, s := range c.Services {
		for _, v := range s.Volumes {
			if src, dst, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(src, ".") {
				dst, _, _ = strings.Cut(dst, ":")
				mounted[dst] = filepath.Join(composeDir, src)
			}
		}
	}
	if len(prom.RuleFiles) != 1 || mounted[prom.RuleFiles[0]] != filepath.Join("prometheus", "alerts.yml") {
		t.Errorf("Prometheus loads %v, want deploy/prometheus/alerts.yml as mounted (%v)", prom.RuleFiles, mounted)
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(mounted)), func(f string) bool { return f == filepath.Join("grafana", "dashboard.json") }) {
		t.Error("Grafana is not given deploy/grafana/dashboard.json")
	}
}

func port(addr string) string {
	if addr == "" {
		addr = config.Default().HTTPAddr
	}
	_, p, _ := strings.Cut(addr, ":")
	return p
}

// k8sObject is the part of a Kubernetes manifest the tests read.
type k8sObject struct {
	Kind     string            `yaml:"kind"`
	Data     map[string]string `yaml:"data"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		MinAvailable   any `yaml:"minAvailable"`
		Ports          []struct {
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
			Name       string `yaml:"name"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
	Containers                    []struct {
		Name    string `yaml:"name"`
		EnvFrom []struct {
			ConfigMapRef struct {
				Name string `yaml:"name"`
			} `yaml:"configMapRef"`
		} `yaml:"envFrom"`
		Env []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom any    `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name   string `yaml:"name"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

const k8sDir = "kubernetes"

func readK8s(t *testing.T) map[string]k8sObject {
	t.Helper()
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	yamlFile(t, filepath.Join(k8sDir, "kustomization.yaml"), &kust)
	objs := map[string]k8sObject{}
	for _, r := range kust.Resources {
		var o k8sObject
		yamlFile(t, filepath.Join(k8sDir, r), &o)
		objs[o.Kind] = o
	}
	files, _ := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if len(files) != len(kust.Resources)+1 {
		t.Errorf("kustomization.yaml lists %d of the %d manifests", len(kust.Resources), len(files)-1)
	}
	return objs
}

// deploymentEnv is the environment of the worker container: its ConfigMap and its own
// variables (a fieldRef stands for the pod's name).
func deploymentEnv(t *testing.T, objs map[string]k8sObject) map[string]string {
	t.Helper()
	dep := objs["Deployment"]
	if len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want the worker alone", len(dep.Spec.Template.Spec.Containers))
	}
	c := dep.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		cm := objs["ConfigMap"]
		if from.ConfigMapRef.Name != cm.Metadata.Name {
			t.Errorf("envFrom names ConfigMap %q; the manifests have %q", from.ConfigMapRef.Name, cm.Metadata.Name)
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = "liverelay-7d9f8c6b5-x2x4q"
		}
		env[e.Name] = v
	}
	return env
}

func TestKubernetes(t *testing.T) {
	objs := readK8s(t)
	for _, kind := range []string{"Deployment", "ConfigMap", "Secret", "PodDisruptionBudget", "Service"} {
		if _, ok := objs[kind]; !ok {
			t.Errorf("no %s", kind)
		}
	}
	env := deploymentEnv(t, objs)
	cfg := loadSettings(t, "the Deployment", env)
	pod := objs["Deployment"].Spec.Template.Spec
	c := pod.Containers[0]

	if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace <= cfg.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %v, want more than LIVE_SHUTDOWN_TIMEOUT=%v", grace, cfg.ShutdownTimeout)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources %+v, want cpu and memory requests and a memory limit", c.Resources)
	}
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, tt := range []struct {
		name string
		p    *probe
		path string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if tt.p == nil {
			t.Errorf("no %s probe", tt.name)
			continue
		}
		if tt.p.HTTPGet.Path != tt.path {
			t.Errorf("%s probe asks %s, want %s", tt.name, tt.p.HTTPGet.Path, tt.path)
		}
		if p := probePort(tt.p.HTTPGet.Port, ports); strconv.Itoa(p) != port(cfg.HTTPAddr) {
			t.Errorf("%s probe asks port %v (%d), the worker listens on %q", tt.name, tt.p.HTTPGet.Port, p, cfg.HTTPAddr)
		}
	}

	// Secrets come from the Secret, mounted as files, never as values in the environment.
	secret := objs["Secret"]
	mounts := map[string]string{} // mount path → Secret
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				mounts[m.MountPath] = v.Secret.SecretName
			}
		}
	}
	files := 0
	for _, s := range config.Settings() {
		if !s.Secret {
			continue
		}
		if _, ok := env[s.Env]; ok {
			t.Errorf("%s is set in the environment: mount it and set %s_FILE", s.Env, s.Env)
		}
		path, ok := env[s.Env+"_FILE"]
		if !ok {
			continue
		}
		files++
		dir, key := filepath.Split(path)
		if mounts[filepath.Clean(dir)] != secret.Metadata.Name {
			t.Errorf("%s_FILE=%s is not in the mounted Secret %s (mounts %v)", s.Env, path, secret.Metadata.Name, mounts)
		}
		if _, ok := secret.StringData[key]; !ok {
			t.Errorf("%s_FILE=%s: the Secret has no key %s", s.Env, path, key)
		}
	}
	if files < 2 {
		t.Errorf("%d secrets read from files, want the provider's and NATS's", files)
	}

	// The budget and the Service select the Deployment's pods; the Service serves the
	// metrics port.
	sel := objs["Deployment"].Spec.Selector.MatchLabels
	for _, kind := range []string{"PodDisruptionBudget"} {
		if got := objs[kind].Spec.Selector.MatchLabels; len(got) == 0 || !maps.Equal(got, sel) {
			t.Errorf("%s selects %v, the Deployment %v", kind, got, sel)
		}
	}
	if objs["PodDisruptionBudget"].Spec.MaxUnavailable == nil && objs["PodDisruptionBudget"].Spec.MinAvailable == nil {
		t.Error("the PodDisruptionBudget sets no budget")
	}
	svc := objs["Service"]
	if len(svc.Spec.Ports) != 1 || probePort(svc.Spec.Ports[0].TargetPort, ports) != ports["metrics"] || ports["metrics"] == 0 {
		t.Errorf("the Service's ports %+v do not reach the worker's metrics port %v", svc.Spec.Ports, ports)
	}
}

func probePort(p any, named map[string]int) int {
	switch p := p.(type) {
	case int:
		return p
	case string:
		if n, err := strconv.Atoi(p); err == nil {
			return n
		}
		return named[p]
	}
	return 0
}

// The image asks its worker for its health with the binary it ships, and its default
// settings are real ones the worker accepts: the embedded server on loopback.
func TestDockerfile(t *testing.T) {
	df := string(readFile(t, "../Dockerfile"))
	copyTo := regexp.MustCompile(`(?m)^COPY --from=build \S+ (\S+)$`).FindStringSubmatch(df)
	health := regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD \["([^"]+)", "health"\]$`).FindStringSubmatch(df)
	switch {
	case copyTo == nil:
		t.Error("the Dockerfile copies no binary")
	case health == nil:
		t.Error(`the Dockerfile has no HEALTHCHECK ... CMD ["<binary>", "health"]`)
	case health[1] != copyTo[1]:
		t.Errorf("the HEALTHCHECK runs %s, the binary is %s", health[1], copyTo[1])
	}
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ENV (\w+)=(\S*)$`).FindAllStringSubmatch(df, -1) {
		env[m[1]] = m[2]
	}
	cfg := loadSettings(t, "the Dockerfile", env)
	if !broker.Loopback(cfg.EmbeddedListen) {
		t.Errorf("the image's embedded server listens on %s", cfg.EmbeddedListen)
	}
}

// The alert rules are valid Prometheus rules: each has a name, a PromQL expression the
// parser accepts, a valid "for", a severity, and annotations that are valid templates.
func TestAlertRules(t *testing.T) {
	for _, r := range alertRules(t) {
		if r.Alert == "" {
			t.Errorf("a rule with no name: %q", r.Expr)
		}
		if _, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr); err != nil {
			t.Errorf("%s: %v", r.Alert, err)
		}
		if r.For != "" {
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
			}
		}
		if s := r.Labels["severity"]; s != "page" && s != "ticket" {
			t.Errorf("%s: severity %q, want page or ticket", r.Alert, s)
		}
		if r.Annotations["summary"] == "" {
			t.Errorf("%s: no summary", r.Alert)
		}
		for k, v := range r.Annotations {
			// Prometheus defines these before expanding an annotation.
			defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}"
			if _, err := template.New(k).Parse(defs + v); err != nil {
				t.Errorf("%s: annotation %s: %v", r.Alert, k, err)
			}
		}
	}
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	b := readFile(t, filepath.Join("prometheus", "alerts.yml"))
	var f struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // as Prometheus reads it: an unknown field is an error
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return rules
}
