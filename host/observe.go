package host

import (
	"time"

	"github.com/airlockhq/airlock/abi"
)

// metricsSnapshot is what the metrics endpoint reads at each scrape.
func (h *Host) metricsSnapshot() MetricsSnapshot {
	s := MetricsSnapshot{Plugins: h.Status(), AuditFailures: h.AuditFailures(), Sources: h.sourceLosses()}
	h.mu.RLock()
	s.Failed = len(h.loadErrors)
	h.mu.RUnlock()
	return s
}

// observer is the plugins' Observe hook: the metrics', or nil when off.
func (h *Host) observer() func(string, abi.EventKind, time.Duration, error) {
	if h.metrics == nil {
		return nil
	}
	return h.metrics.Observe
}

// forget drops a plugin that is gone from the metrics, if they are on.
func (h *Host) forget(name string) {
	if h.metrics != nil {
		h.metrics.Forget(name)
	}
}
