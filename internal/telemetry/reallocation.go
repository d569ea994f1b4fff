package telemetry

import "github.com/prometheus/client_golang/prometheus"

// reallocationFamily is the reallocator's counter.
func reallocationFamily() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "reallocations_total",
		Help: "Reallocation revisions by step: proposed, approved, rejected, applied (every line change applied), failed (some change failed)."},
		[]string{"outcome"})
}

var reallocationOutcomes = map[string]bool{"proposed": true, "approved": true, "rejected": true, "applied": true, "failed": true}

// ObserveReallocation counts one step of a reallocation
// (services/reallocator).
func (m *Metrics) ObserveReallocation(outcome string) {
	if m == nil {
		return
	}
	m.reallocations.WithLabelValues(oneOf(outcome, reallocationOutcomes)).Inc()
}
