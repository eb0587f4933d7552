// Package deploy holds the files that deploy liverelay — a docker-compose stack, Kubernetes
// manifests, a Grafana dashboard and Prometheus alert rules — and the tests that check
// them against the worker: every setting they set exists, every metric they name is
// exposed, every probe path is served.
package deploy
