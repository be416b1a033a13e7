package helmtest

import (
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestChartLint is `helm lint --strict` on the chart: warnings fail too.
func TestChartLint(t *testing.T) {
	kv := &chartutil.KubeVersion{Version: "v1.31.0", Major: "1", Minor: "31"}
	for name, vals := range map[string]map[string]any{
		"defaults":      nil,
		"everything on": {"ingress": map[string]any{"enabled": true}, "httpRoute": map[string]any{"enabled": true}, "serviceMonitor": map[string]any{"enabled": true}},
	} {
		l := lint.AllWithKubeVersion(chartDir, vals, "default", kv)
		for _, m := range l.Messages {
			t.Logf("%s: %s", name, m)
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: %s", name, m)
			}
		}
	}
}
