package opscheck

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Exported is what a live /metrics holds: each family by name.
type Exported map[string]*Family

// Family is one metric family: its type and the values seen for each label.
// Le and Quantile hold the bucket bounds of a histogram and the quantiles of
// a summary, which the exposition does not carry as labels.
type Family struct {
	Type     dto.MetricType
	Labels   map[string]map[string]bool
	Le       map[string]bool
	Quantile map[string]bool
}

// prometheusOwn are the series Prometheus writes itself for every target.
var prometheusOwn = map[string]bool{"up": true}

// targetLabels are attached by Prometheus to every series it scrapes; their
// values depend on the scrape configuration, not on the service.
var targetLabels = map[string]bool{"job": true, "instance": true}

// series returns the labels (with the values seen) that a series name can
// carry: a family's own name, or for a histogram its _bucket (with le), _sum
// and _count, for a summary its _sum and _count.
func (e Exported) series(name string) (map[string]map[string]bool, bool) {
	if prometheusOwn[name] {
		return map[string]map[string]bool{}, true
	}
	with := func(f *Family, label string, values map[string]bool) map[string]map[string]bool {
		m := make(map[string]map[string]bool, len(f.Labels)+1)
		for k, v := range f.Labels {
			m[k] = v
		}
		if label != "" {
			m[label] = values
		}
		return m
	}
	if f, ok := e[name]; ok {
		switch f.Type {
		case dto.MetricType_HISTOGRAM:
			return nil, false // only its _bucket, _sum and _count are series
		case dto.MetricType_SUMMARY:
			return with(f, "quantile", f.Quantile), true
		}
		return with(f, "", nil), true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := e[base]
		switch {
		case !ok:
		case f.Type == dto.MetricType_HISTOGRAM && suffix == "_bucket":
			return with(f, "le", f.Le), true
		case f.Type == dto.MetricType_HISTOGRAM || f.Type == dto.MetricType_SUMMARY && suffix != "_bucket":
			return with(f, "", nil), true
		}
	}
	return nil, false
}

// Family returns the family a series name belongs to ("" if none).
func (e Exported) Family(name string) string {
	if _, ok := e[name]; ok {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if _, ok := e[base]; ok {
				return base
			}
		}
	}
	return ""
}

var promqlParser = parser.NewParser(parser.Options{})

// grafanaVar is a dashboard variable: $name, ${name} or ${name:format}.
var grafanaVar = regexp.MustCompile(`\$(?:\{(\w+)(?::\w+)?\}|(\w+))`)

// Substitute replaces Grafana's variables so that Prometheus' parser can
// read a panel's query: intervals by a duration, the others (job, instance,
// which the dashboard uses only in =~ matchers) by ".*".
func Substitute(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(v string) string {
		m := grafanaVar.FindStringSubmatch(v)
		name := m[1] + m[2]
		switch name {
		case "__rate_interval", "__interval", "__range", "interval":
			return "5m"
		}
		return ".*"
	})
}

// Names returns the series names an expression selects.
func Names(expr string) ([]string, error) {
	e, err := promqlParser.ParseExpr(Substitute(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, sel := range selectors(e) {
		if n := selectorName(sel); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, nil
}

// Check parses expr (Grafana variables substituted) and returns what in it
// the service does not export: unknown metrics, labels a metric does not
// carry, label values never seen, grouping by labels none of the selected
// series has.
func (e Exported) Check(expr string) []string {
	root, err := promqlParser.ParseExpr(Substitute(expr))
	if err != nil {
		return []string{"does not parse: " + err.Error()}
	}
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	parser.Inspect(root, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			name := selectorName(n)
			if name == "" {
				report("selector %s names no metric", n)
				return nil
			}
			have, ok := e.series(name)
			if !ok {
				report("metric %s is not exported by the service", name)
				return nil
			}
			for _, m := range n.LabelMatchers {
				if m.Name == model.MetricNameLabel || targetLabels[m.Name] {
					continue
				}
				values, ok := have[m.Name]
				if !ok {
					report("%s has no label %q (it has: %s)", name, m.Name, keys(have))
					continue
				}
				if problem := checkValues(m, values); problem != "" {
					report("%s{%s}: %s", name, m, problem)
				}
			}
		case *parser.AggregateExpr:
			if !n.Without {
				for _, l := range n.Grouping {
					if !e.labelReachable(n.Expr, l) {
						report("%s by (%s): no series under it has the label %q", n.Op, strings.Join(n.Grouping, ", "), l)
					}
				}
			}
		case *parser.BinaryExpr:
			if vm := n.VectorMatching; vm != nil && vm.On {
				for _, l := range vm.MatchingLabels {
					if !e.labelReachable(n.LHS, l) || !e.labelReachable(n.RHS, l) {
						report("on(%s): %q is not a label of both sides", strings.Join(vm.MatchingLabels, ", "), l)
					}
				}
			}
		}
		return nil
	})
	return problems
}

// checkValues says what is wrong with a matcher, given the values seen: an
// = or =~ must match a value the service exports, and each literal of an
// alternation (a|b|c) must be one.
func checkValues(m *labels.Matcher, values map[string]bool) string {
	switch m.Type {
	case labels.MatchEqual:
		if m.Value != "" && !values[m.Value] {
			return fmt.Sprintf("value %q never exported (seen: %s)", m.Value, keys(values))
		}
	case labels.MatchRegexp:
		if literalAlternation.MatchString(m.Value) {
			for _, v := range strings.Split(m.Value, "|") {
				if !values[v] {
					return fmt.Sprintf("value %q never exported (seen: %s)", v, keys(values))
				}
			}
			return ""
		}
		for v := range values {
			if m.Matches(v) {
				return ""
			}
		}
		return fmt.Sprintf("matches no exported value (seen: %s)", keys(values))
	}
	return ""
}

var literalAlternation = regexp.MustCompile(`^[A-Za-z0-9_:.+-]+(\|[A-Za-z0-9_:.+-]+)*$`)

// labelReachable reports whether some series selected under expr can carry
// label (or expr selects nothing, as vector(0) does).
func (e Exported) labelReachable(expr parser.Expr, label string) bool {
	if targetLabels[label] {
		return true
	}
	sels := selectors(expr)
	if len(sels) == 0 {
		return true
	}
	for _, sel := range sels {
		if have, ok := e.series(selectorName(sel)); ok {
			if _, ok := have[label]; ok {
				return true
			}
		}
		// label_replace and friends could make a label; the dashboard and
		// the rules do not use them, so they are not modelled.
	}
	return false
}

func selectors(expr parser.Node) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

func keys[V any](m map[string]V) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ", ")
}
