// Package metrics is the host's optional Prometheus endpoint
// (runtime.toml [metrics] listen). It counts what plugins handle and how
// long their handlers take (told by the plugin runner), counts capability
// decisions (by reading the gate's audit stream, so that every allow and
// deny is counted exactly where it is recorded), and reads each plugin's
// state, restarts, queue depth and drops, and the audit file's failed
// writes, from the host at scrape time. airlock_build_info says what the
// host is (internal/version).
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/version"
)

// Snapshot is what the host reports at each scrape.
type Snapshot = host.MetricsSnapshot

// ForHost is New as host.Options.Metrics.
func ForHost(snapshot func() Snapshot) host.Metrics { return New(snapshot) }

// Metrics holds the host's collectors. Its methods are safe for concurrent
// use.
type Metrics struct {
	reg      *prometheus.Registry
	events   *prometheus.CounterVec
	failures *prometheus.CounterVec
	duration *prometheus.HistogramVec
	calls    *prometheus.CounterVec
}

// New returns metrics whose per-plugin gauges come from snapshot.
func New(snapshot func() Snapshot) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_plugin_events_total",
			Help: "Events delivered to a plugin's handler, by kind (start, stop, timer, udev, dbus_signal, dropped, mount).",
		}, []string{"plugin", "kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_plugin_handler_failures_total",
			Help: "Handler calls that ended the instance (trap, exit, timeout), by kind; 0 from the plugin's first event of the kind.",
		}, []string{"plugin", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "airlock_plugin_handler_duration_seconds",
			Help: "How long a plugin's handler ran per event, host calls included.",
			// 100 µs to about 13 s: a handler's deadline is 5 s by default.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}, []string{"plugin", "kind"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_capability_calls_total",
			Help: "Capability uses checked by the gate, by plugin, capability and decision (allow, deny, or throttled: refused while the plugin was throttled after too many denials). Folded audit records count as many as they stand for. capability=\"admin\" counts admin-socket requests.",
		}, []string{"plugin", "capability", "decision"}),
	}
	info := version.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "airlock_build_info",
		Help:        "Always 1; its labels say what this host is: airlock's version and git commit, and the Go and wazero versions it was built with.",
		ConstLabels: prometheus.Labels{"version": info.Version, "commit": info.Commit, "go": info.Go, "wazero": info.Wazero},
	})
	build.Set(1)
	m.reg.MustRegister(build, m.events, m.failures, m.duration, m.calls, &statusCollector{snapshot: snapshot},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Observe is plugin.Options.Observe: one handler call.
func (m *Metrics) Observe(name string, kind abi.EventKind, d time.Duration, err error) {
	k := kind.String()
	m.events.WithLabelValues(name, k).Inc()
	m.duration.WithLabelValues(name, k).Observe(d.Seconds())
	// The failure count exists, at 0, from a plugin's first event of a
	// kind (every plugin's first is start), so that rate() and alerts
	// see it before the first failure.
	f := m.failures.WithLabelValues(name, k)
	if err != nil {
		f.Inc()
	}
}

// Forget deletes the series of a plugin that is gone (removed, or renamed
// by a reload), so that the endpoint stops exporting it. The caller makes
// sure the plugin's instance has ended, so no handler call or capability
// use of it is still to be counted.
func (m *Metrics) Forget(name string) {
	only := prometheus.Labels{"plugin": name}
	m.events.DeletePartialMatch(only)
	m.failures.DeletePartialMatch(only)
	m.duration.DeletePartialMatch(only)
	m.calls.DeletePartialMatch(only)
}

// Handler serves the exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Serve listens on addr and serves /metrics until the returned func is
// called. The address it listens on (addr may have port 0) is logged.
func (m *Metrics) Serve(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("airlock metrics: see /metrics\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "error", err.Error())
		}
	}()
	log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}

// states are every plugin.State, for a gauge that is 1 for the current one.
var states = []plugin.State{plugin.StateStarting, plugin.StateRunning, plugin.StateRestarting,
	plugin.StateCrashLooping, plugin.StateStopping, plugin.StateStopped}

var (
	descState = prometheus.NewDesc("airlock_plugin_state",
		"1 for the plugin's current state, 0 for the others.", []string{"plugin", "state"}, nil)
	descRestarts = prometheus.NewDesc("airlock_plugin_restarts_total",
		"Restarts after a crash since the plugin (this version of it) loaded.", []string{"plugin"}, nil)
	descQueue = prometheus.NewDesc("airlock_plugin_queue_depth",
		"Events waiting in the plugin's queue.", []string{"plugin"}, nil)
	descDropped = prometheus.NewDesc("airlock_plugin_events_dropped_total",
		"Events lost, never delivered, since the plugin (this version of it) loaded, by event kind and reason: queue_full (limits.queue and limits.overflow) or rate_limit (limits.events_per_second).", []string{"plugin", "kind", "reason"}, nil)
	descCoalesced = prometheus.NewDesc("airlock_plugin_events_coalesced_total",
		"Events replaced in the plugin's queue by a newer one of the same source (a timer's tick, a device's udev change) since the plugin (this version of it) loaded, by event kind. Handled + dropped + coalesced = queued.", []string{"plugin", "kind"}, nil)
	descSourceOverflows = prometheus.NewDesc("airlock_source_overflows_total",
		"Times a trigger source's input overflowed before the host could route its events (udev: the kernel's uevent socket, ENOBUFS).", []string{"source"}, nil)
	descSourceLost = prometheus.NewDesc("airlock_source_events_lost_total",
		"Events a trigger source lost to those overflows, before any plugin's queue (udev: exact, from the kernel's SEQNUM gaps).", []string{"source"}, nil)
	descFailed = prometheus.NewDesc("airlock_plugins_failed",
		"Plugin directories whose plugin did not load, or whose reload failed.", nil, nil)
	descAuditFailures = prometheus.NewDesc("airlock_audit_write_failures_total",
		"Audit records that could not be written to the audit file (log.audit), such as on a full disk; they went to stderr instead.", nil, nil)
)

// statusCollector reads the host's plugins at scrape time, so that a
// removed plugin disappears and a reloaded one starts its counts afresh.
type statusCollector struct{ snapshot func() Snapshot }

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descRestarts, descQueue, descDropped, descCoalesced, descSourceOverflows, descSourceLost, descFailed, descAuditFailures} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	for _, p := range s.Plugins {
		for _, st := range states {
			v := 0.0
			if p.State == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, p.Name, string(st))
		}
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(p.Restarts), p.Name)
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(p.Queue), p.Name)
		// Every kind with every reason, zeros included, so that a rate()
		// over a series that appears mid-run does not miss its first count.
		for i := range p.Losses.QueueFull {
			if i == 0 {
				continue // "other": a kind this host does not deliver
			}
			kind := plugin.KindName(i)
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(p.Losses.QueueFull[i]), p.Name, kind, "queue_full")
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(p.Losses.Rate[i]), p.Name, kind, "rate_limit")
			ch <- prometheus.MustNewConstMetric(descCoalesced, prometheus.CounterValue, float64(p.Losses.Coalesced[i]), p.Name, kind)
		}
	}
	for _, l := range s.Sources {
		ch <- prometheus.MustNewConstMetric(descSourceOverflows, prometheus.CounterValue, float64(l.Overflows), l.Source)
		ch <- prometheus.MustNewConstMetric(descSourceLost, prometheus.CounterValue, float64(l.Lost), l.Source)
	}
	ch <- prometheus.MustNewConstMetric(descFailed, prometheus.GaugeValue, float64(s.Failed))
	ch <- prometheus.MustNewConstMetric(descAuditFailures, prometheus.CounterValue, float64(s.AuditFailures))
}

// CountAudit wraps the audit stream's handler: each gate record (message
// "audit" with plugin, capability and decision) is counted, then passed on.
func (m *Metrics) CountAudit(next slog.Handler) slog.Handler {
	return &auditCounter{m: m, next: next}
}

type auditCounter struct {
	m    *Metrics
	next slog.Handler
}

func (a *auditCounter) Enabled(ctx context.Context, l slog.Level) bool {
	return true // count even what the stream itself discards
}

func (a *auditCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "audit" {
		var plugin, capability, decision string
		count := uint64(1) // a folded record carries the decisions it stands for
		r.Attrs(func(at slog.Attr) bool {
			switch at.Key {
			case "plugin":
				plugin = at.Value.String()
			case "capability":
				capability = at.Value.String()
			case "decision":
				decision = at.Value.String()
			case "count":
				count = at.Value.Uint64()
			}
			return true
		})
		if capability != "" && decision != "" {
			a.m.calls.WithLabelValues(plugin, capability, decision).Add(float64(count))
		}
	}
	if !a.next.Enabled(ctx, r.Level) {
		return nil
	}
	return a.next.Handle(ctx, r)
}

func (a *auditCounter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &auditCounter{m: a.m, next: a.next.WithAttrs(attrs)}
}

func (a *auditCounter) WithGroup(name string) slog.Handler {
	return &auditCounter{m: a.m, next: a.next.WithGroup(name)}
}
