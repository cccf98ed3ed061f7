package opscheck

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	grafana "github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// TestDashboardMatchesGrafanaSchema decodes dashboard.json strictly into
// the dashboard types Grafana generates from its own schema (the Foundation
// SDK), panel options and field config included: an unknown or misspelled
// field, or a missing required one, fails.
func TestDashboardMatchesGrafanaSchema(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := grafanaStrict(b); err != nil {
		t.Fatalf("dashboard.json against Grafana's schema:\n%v", err)
	}
	// The check can fail: a misspelled panel option.
	bad := strings.Replace(string(b), `"showLegend"`, `"showLegent"`, 1)
	if err := grafanaStrict([]byte(bad)); err == nil || !strings.Contains(err.Error(), "showLegent") {
		t.Errorf("a misspelled option passed: %v", err)
	}
}

func grafanaStrict(b []byte) error {
	plugins.RegisterDefaultPlugins() // the panel and query types, for options and targets
	var d grafana.Dashboard
	if err := nonEmpty(d.UnmarshalJSONStrict(b)); err != nil {
		return err
	}
	return nonEmpty(d.Validate())
}

// nonEmpty turns the SDK's empty error list (a typed nil) into nil.
func nonEmpty(err error) error {
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}
