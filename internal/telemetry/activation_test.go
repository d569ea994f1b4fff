package telemetry_test

import (
	"testing"

	"github.com/dealflow/dealflow/internal/telemetry"
	"github.com/dealflow/dealflow/services/activator"
)

// TestActivationMetrics: the activator's outcomes and the sellers' pushes
// are counted by outcome, an unknown one as other, and a nil Metrics
// counts nothing without failing.
func TestActivationMetrics(t *testing.T) {
	var nilM *telemetry.Metrics
	nilM.ObserveActivation(activator.OutcomeActivated)
	nilM.ObserveDealPush("received")

	m := telemetry.NewMetrics()
	for _, o := range []string{activator.OutcomeActivated, activator.OutcomeActivated, activator.OutcomeRetried, activator.OutcomeSkipped, "made-up"} {
		m.ObserveActivation(o)
	}
	m.ObserveDealPush("received")
	m.ObserveDealPush("unauthorized")
	mfs := scrape(t, m)
	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"dealflow_activations_total", "outcome", "activated", 2},
		{"dealflow_activations_total", "outcome", "retried", 1},
		{"dealflow_activations_total", "outcome", "skipped", 1},
		{"dealflow_activations_total", "outcome", "other", 1},
		{"dealflow_deal_pushes_total", "outcome", "received", 1},
		{"dealflow_deal_pushes_total", "outcome", "unauthorized", 1},
	} {
		if got := value(mfs, c.name, map[string]string{c.label: c.value}); got != c.want {
			t.Errorf("%s{%s=%s} = %v, want %v", c.name, c.label, c.value, got, c.want)
		}
	}
}
