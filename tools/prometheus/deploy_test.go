package opscheck

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"go.yaml.in/yaml/v3"
)

var (
	alertsFile     = filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")
	alertTestsFile = filepath.Join("..", "..", "deploy", "prometheus", "alerts_test.yml")
	dashboardFile  = filepath.Join("..", "..", "deploy", "grafana", "dashboard.json")
)

// query is one PromQL expression and where it comes from.
type query struct{ where, expr string }

func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile(alertsFile, false, model.UTF8Validation, promqlParser, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.FailNow()
	}
	return groups
}

func alertQueries(t *testing.T) []query {
	var qs []query
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{"alerts.yml " + r.Alert + r.Record, r.Expr})
		}
	}
	return qs
}

// TestAlertRules: every rule is an alert an on-call person can act on.
func TestAlertRules(t *testing.T) {
	seen := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("rule %q is not an alert: recording rules would need their names allowed in the checks", r.Record)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("%s: defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if strings.TrimSpace(r.Annotations["summary"]) == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			if d := r.Annotations["description"]; !strings.Contains(d, "Check") {
				t.Errorf("%s: the description should say what to check: %q", r.Alert, d)
			}
		}
	}
}

// alertTests is the part of promtool's test file this test reads.
type alertTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertIsUnitTested: alerts_test.yml has, for every alert, a case
// where it fires and one where it stays silent (promtool runs them).
func TestEveryAlertIsUnitTested(t *testing.T) {
	b, err := os.ReadFile(alertTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	var file alertTests
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(file.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("rule_files %v, want [alerts.yml]", file.RuleFiles)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tg := range file.Tests {
		for _, c := range tg.AlertRuleTest {
			if len(c.ExpAlerts) > 0 {
				fires[c.Alertname] = true
			} else {
				silent[c.Alertname] = true
			}
		}
	}
	defined := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			defined[r.Alert] = true
			if !fires[r.Alert] {
				t.Errorf("%s: no case in alerts_test.yml where it fires", r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("%s: no case in alerts_test.yml where it stays silent", r.Alert)
			}
		}
	}
	for name := range fires {
		if !defined[name] {
			t.Errorf("alerts_test.yml tests %s, which alerts.yml does not define", name)
		}
	}
	for name := range silent {
		if !defined[name] {
			t.Errorf("alerts_test.yml tests %s, which alerts.yml does not define", name)
		}
	}
}

// dashboard is the part of the Grafana model this test reads.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Desc       string      `json:"description"`
	Datasource *datasource `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// The dashboard's datasource is a variable, so it imports into any Grafana.
const dsVariable = "${datasource}"

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	return d
}

func eachPanel(ps []panel, fn func(panel)) {
	for _, p := range ps {
		fn(p)
		eachPanel(p.Panels, fn)
	}
}

// labelValues is a Grafana variable query: label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

func dashboardQueries(t *testing.T) []query {
	t.Helper()
	d := loadDashboard(t)
	var qs []query
	eachPanel(d.Panels, func(p panel) {
		for _, tg := range p.Targets {
			qs = append(qs, query{"dashboard panel " + p.Title + " " + tg.RefID, tg.Expr})
		}
	})
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := variableQuery(t, v.Query)
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q)
			continue
		}
		// The label must exist on what the selector picks: group by it.
		qs = append(qs, query{"dashboard variable " + v.Name, "count by (" + m[2] + ") (" + m[1] + ")"})
	}
	return qs
}

// variableQuery reads a variable's query: a string, or {"query": "..."}.
func variableQuery(t *testing.T, raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Errorf("variable query %s: %v", raw, err)
	}
	return o.Query
}

// TestDashboardIsImportable: what Grafana needs to import the file as is.
func TestDashboardIsImportable(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want all set (schemaVersion 36 or later)", d.UID, d.Title, d.SchemaVersion)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Name == "datasource" && variableQuery(t, v.Query) == "prometheus" {
			hasDS = true
		}
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != dsVariable) {
			t.Errorf("variable %s does not use the %s datasource", v.Name, dsVariable)
		}
	}
	if !hasDS {
		t.Error("no datasource variable named datasource of type prometheus")
	}
	ids := map[int]bool{}
	queries := 0
	eachPanel(d.Panels, func(p panel) {
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d missing or used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			return
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d: title %q, %d queries", p.ID, p.Title, len(p.Targets))
		}
		if p.Datasource == nil || p.Datasource.UID != dsVariable {
			t.Errorf("panel %q: datasource %+v, want uid %s", p.Title, p.Datasource, dsVariable)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			queries++
			if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: query %q with refId %q (empty or repeated)", p.Title, tg.Expr, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != dsVariable {
				t.Errorf("panel %q %s: datasource %+v, want uid %s", p.Title, tg.RefID, tg.Datasource, dsVariable)
			}
		}
	})
	if queries == 0 {
		t.Error("no queries")
	}
	// Each query parses (the metric check is TestQueriesUseExportedMetrics).
	for _, q := range dashboardQueries(t) {
		if _, err := Names(q.expr); err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, q.expr)
		}
	}
}

// TestQueriesUseExportedMetrics runs the service, makes it answer every kind
// of request, reads its /metrics, and checks every metric, label and label
// value the alert rules and the dashboard name against it: a renamed metric
// fails here, not on the night of an outage. It also wants every
// forwardauth_ metric on the dashboard.
func TestQueriesUseExportedMetrics(t *testing.T) {
	live := liveMetrics(t)
	for _, q := range append(alertQueries(t), dashboardQueries(t)...) {
		for _, problem := range live.Check(q.expr) {
			t.Errorf("%s: %s\n    %s", q.where, problem, strings.Join(strings.Fields(q.expr), " "))
		}
	}
	shown := map[string]bool{}
	for _, q := range dashboardQueries(t) {
		names, _ := Names(q.expr)
		for _, n := range names {
			shown[live.Family(n)] = true
		}
	}
	for name := range live {
		if strings.HasPrefix(name, "forwardauth_") && !shown[name] {
			t.Errorf("%s is exported but on no dashboard panel", name)
		}
	}
	// What the run must have made the service export, so that the label
	// values above were checked against real answers, not a quiet service.
	for _, want := range []struct{ name, label, value string }{
		{"forwardauth_decisions_total", "outcome", "allow"},
		{"forwardauth_resolver_calls_total", "result", "error"},
		{"forwardauth_resolver_rejected_total", "reason", "circuit_open"},
		{"forwardauth_resolver_rejected_total", "reason", "no_slot"},
		{"forwardauth_resolver_rejected_total", "reason", "client_rate"},
		{"forwardauth_decisions_total", "outcome", "misshapen"},
		{"forwardauth_decisions_total", "outcome", "rate_limited"},
		{"forwardauth_cache_lookups_total", "cache", "jwt"},
	} {
		if f := live[want.name]; f == nil || !f.Labels[want.label][want.value] {
			t.Errorf("/metrics lacks %s{%s=%q}", want.name, want.label, want.value)
		}
	}
	if f := live["forwardauth_resolver_duration_seconds"]; f == nil || f.Type != dto.MetricType_HISTOGRAM {
		t.Error("forwardauth_resolver_duration_seconds is not a histogram")
	}
	// The panel of decisions by outcome says what each outcome answers:
	// every outcome the service exports is named there.
	found := false
	eachPanel(loadDashboard(t).Panels, func(p panel) {
		if p.Title != "Decisions by outcome" {
			return
		}
		found = true
		for outcome := range live["forwardauth_decisions_total"].Labels["outcome"] {
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(outcome) + `\b`).MatchString(p.Desc) {
				t.Errorf("the panel %q does not say what outcome %q answers", p.Title, outcome)
			}
		}
	})
	if !found {
		t.Error("no panel \"Decisions by outcome\"")
	}
}
