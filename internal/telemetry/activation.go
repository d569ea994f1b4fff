package telemetry

import "github.com/prometheus/client_golang/prometheus"

// activationFamilies are the activator's and the buyer deal endpoint's
// counters.
func activationFamilies() (activations, pushes *prometheus.CounterVec) {
	activations = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "activations_total",
		Help: "Deal activations in the DSP by outcome: activated, replayed (the DSP had the deal's key from an earlier attempt), retried (an attempt failed, another follows), refused (final), gave_up (attempts ran out), skipped (AdCP media buys: nothing to activate), stale (an approval the deal no longer agrees with), duplicate (already activated)."},
		[]string{"outcome"})
	pushes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "deal_pushes_total",
		Help: "Deals sellers pushed to the buyer's deal endpoint (POST /deals), by outcome: received (new deal or new terms), unchanged, conflict (other terms for an approved deal), invalid, unauthorized, unavailable."},
		[]string{"outcome"})
	return activations, pushes
}

var (
	activationOutcomes = map[string]bool{"activated": true, "replayed": true, "retried": true, "refused": true, "gave_up": true,
		"skipped": true, "stale": true, "duplicate": true}
	pushOutcomes = map[string]bool{"received": true, "unchanged": true, "conflict": true, "invalid": true, "unauthorized": true, "unavailable": true}
)

// ObserveActivation counts one activation outcome (services/activator).
func (m *Metrics) ObserveActivation(outcome string) {
	if m == nil {
		return
	}
	m.activations.WithLabelValues(oneOf(outcome, activationOutcomes)).Inc()
}

// ObserveDealPush counts one seller push to the buyer's deal endpoint.
func (m *Metrics) ObserveDealPush(outcome string) {
	if m == nil {
		return
	}
	m.dealPushes.WithLabelValues(oneOf(outcome, pushOutcomes)).Inc()
}
