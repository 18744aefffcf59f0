package host

import (
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/metrics"
)

// metricsSnapshot is what the metrics endpoint reads at each scrape.
func (h *Host) metricsSnapshot() metrics.Snapshot {
	s := metrics.Snapshot{Plugins: h.Status(), AuditFailures: h.AuditFailures(), Sources: h.sourceLosses()}
	h.mu.RLock()
	s.Failed = len(h.LoadErrors)
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
