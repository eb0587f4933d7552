package deploy

import (
	_ "github.com/prometheus/prometheus/promql/parser"
	_ "go.yaml.in/yaml/v3"
)
