package opscheck

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

func set(vs ...string) map[string]bool {
	m := map[string]bool{}
	for _, v := range vs {
		m[v] = true
	}
	return m
}

// sample is a small /metrics, as scrape() reads one.
var sample = Exported{
	"forwardauth_decisions_total": {Type: dto.MetricType_COUNTER, Labels: map[string]map[string]bool{
		"outcome": set("allow", "deny", "unavailable")}},
	"forwardauth_resolver_duration_seconds": {Type: dto.MetricType_HISTOGRAM, Labels: map[string]map[string]bool{},
		Le: set("0.1", "1", "+Inf")},
	"go_gc_duration_seconds": {Type: dto.MetricType_SUMMARY, Labels: map[string]map[string]bool{},
		Quantile: set("0", "0.5", "1")},
	"forwardauth_ready": {Type: dto.MetricType_GAUGE, Labels: map[string]map[string]bool{}},
}

// TestCheckFindsWhatTheServiceDoesNotExport: the check itself can fail, on
// each kind of mistake a rename or a typo makes.
func TestCheckFindsWhatTheServiceDoesNotExport(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want string // "" for no problem
	}{
		{`sum by (outcome) (rate(forwardauth_decisions_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))`, ""},
		{`forwardauth_decisions_total{outcome=~"allow|deny"}`, ""},
		{`forwardauth_decisions_total{outcome=~"al.*"}`, ""},
		{`forwardauth_decisions_total{outcome!="nonsense"}`, ""},
		{`histogram_quantile(0.99, sum by (job, le) (rate(forwardauth_resolver_duration_seconds_bucket[5m])))`, ""},
		{`rate(forwardauth_resolver_duration_seconds_sum[5m]) / rate(forwardauth_resolver_duration_seconds_count[5m])`, ""},
		{`go_gc_duration_seconds{quantile="1"}`, ""},
		{`rate(go_gc_duration_seconds_count[5m])`, ""},
		{`absent(up{job=~".*forwardauth.*"} == 1)`, ""},
		{`forwardauth_ready == 0`, ""},

		{`rate(forwardauth_decision_total[5m])`, "forwardauth_decision_total is not exported"},
		{`forwardauth_decisions_total{outcom="allow"}`, `has no label "outcom"`},
		{`forwardauth_decisions_total{outcome="allowed"}`, `value "allowed" never exported`},
		{`forwardauth_decisions_total{outcome=~"allow|denied"}`, `value "denied" never exported`},
		{`forwardauth_decisions_total{outcome=~"x.*"}`, "matches no exported value"},
		{`sum by (result) (forwardauth_decisions_total)`, `no series under it has the label "result"`},
		{`forwardauth_decisions_total * on (outcome) forwardauth_ready`, `"outcome" is not a label of both sides`},
		{`forwardauth_resolver_duration_seconds`, "forwardauth_resolver_duration_seconds is not exported"},
		{`forwardauth_resolver_duration_seconds_sum{le="1"}`, `has no label "le"`},
		{`go_gc_duration_seconds_bucket`, "go_gc_duration_seconds_bucket is not exported"},
		{`forwardauth_ready{quantile="1"}`, `has no label "quantile"`},
		{`sum(rate(forwardauth_decisions_total[5m]`, "does not parse"},
	} {
		problems := sample.Check(tt.expr)
		got := strings.Join(problems, "; ")
		switch {
		case tt.want == "" && len(problems) > 0:
			t.Errorf("%s: %s, want no problem", tt.expr, got)
		case tt.want != "" && !strings.Contains(got, tt.want):
			t.Errorf("%s: %q, want %q", tt.expr, got, tt.want)
		}
	}
}

func TestSubstitute(t *testing.T) {
	got := Substitute(`rate(x{job=~"$job", instance=~"${instance}", a=~"${a:regex}"}[$__rate_interval])`)
	want := `rate(x{job=~".*", instance=~".*", a=~".*"}[5m])`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
