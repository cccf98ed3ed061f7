// Package opscheck holds the checks of deploy/prometheus and deploy/grafana:
// every PromQL expression of the alert rules and of the dashboard is parsed
// with Prometheus' own parser, and each metric, label and label value it
// names must be one a running service exports; the dashboard is decoded
// strictly into Grafana's own schema types. It is a module of its own so
// that the Prometheus server module (also built here into promtool, see
// .ci/ops-tools.sh) stays out of the service's go.mod.
package opscheck
