// Package logtest captures a host's structured logs for tests, so that a
// test can wait for a line and read what was said. Plugin authors use it
// through plugintest; airlock's own tests through testenv.
package logtest

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Log is a slog handler that keeps records for tests to wait on and read.
type Log struct {
	mu   sync.Mutex
	recs []string
	cond chan struct{}
	t    testing.TB
}

// New returns a log and a logger that writes to it (and to t.Log when the
// test is verbose).
func New(t testing.TB) (*Log, *slog.Logger) {
	l := &Log{cond: make(chan struct{}), t: t}
	return l, slog.New(&logHandler{l: l})
}

// Lines returns every record so far, as text lines "level msg k=v...". A
// plugin's own line has its fields first, then plugin= and source=.
func (l *Log) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.recs...)
}

// Count returns how many lines contain all of parts.
func (l *Log) Count(parts ...string) int {
	n := 0
	for _, line := range l.Lines() {
		if containsAll(line, parts) {
			n++
		}
	}
	return n
}

// Wait blocks until n lines contain all of parts, failing the test after a
// generous bound (a liveness guard, not a timing assertion).
func (l *Log) Wait(n int, parts ...string) {
	l.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		l.mu.Lock()
		c := 0
		for _, line := range l.recs {
			if containsAll(line, parts) {
				c++
			}
		}
		ch := l.cond
		l.mu.Unlock()
		if c >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			l.t.Fatalf("waited for %d log lines with %q; have %d. Log:\n%s", n, parts, c, strings.Join(l.Lines(), "\n"))
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

type logHandler struct {
	l     *Log
	attrs []slog.Attr
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *logHandler) WithGroup(string) slog.Handler            { return h }
func (h *logHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &logHandler{l: h.l, attrs: append(append([]slog.Attr(nil), h.attrs...), a...)}
}

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString(r.Level.String() + " " + r.Message)
	// A plugin's own line (source=plugin or stdout) reads as the plugin
	// wrote it, its fields right after its message, then the host's
	// attributes: "INFO tick timer=fast count=1 plugin=ticker
	// source=plugin", whatever order the host's handlers use. Other lines
	// have the logger's attributes, then the record's.
	write := func(a slog.Attr) { b.WriteString(" " + a.Key + "=" + a.Value.String()) }
	var source *slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "source" && (a.Value.String() == "plugin" || a.Value.String() == "stdout") {
			source = &a
		}
		return true
	})
	if source == nil {
		for _, a := range h.attrs {
			write(a)
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		if source == nil || a.Key != "source" {
			write(a)
		}
		return true
	})
	if source != nil {
		for _, a := range h.attrs {
			write(a)
		}
		write(*source)
	}
	h.l.mu.Lock()
	h.l.recs = append(h.l.recs, b.String())
	close(h.l.cond)
	h.l.cond = make(chan struct{})
	h.l.mu.Unlock()
	if testing.Verbose() {
		h.l.t.Log(b.String())
	}
	return nil
}
