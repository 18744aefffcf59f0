// Package logtest captures a host's structured logs for tests, so that a
// test can wait for a line and read what was said. Plugin authors use it
// through plugintest; airlock's own tests through testenv.
//
// The package does not import "testing": airlock test and airlock dev
// (internal/solo) use its Recorder in the production binary, which must not
// link the testing package. A test hands New its *testing.T as a TB.
package logtest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// TB is the part of testing.TB that a Log uses; a *testing.T, *testing.B
// or *testing.F is one.
type TB interface {
	Helper()
	Fatal(args ...any)
	Log(args ...any)
}

// Log is a slog handler that keeps records for tests to wait on and read.
type Log struct {
	mu   sync.Mutex
	recs []string
	cond chan struct{}
	t    TB // nil for a Recorder

	// Timeout bounds Wait (default 60 s): a liveness guard, not a timing
	// assertion.
	Timeout time.Duration
	// FailFast, when set, names a line that ends a Wait at once: a Wait
	// that cannot succeed any more (the plugin trapped or logged an
	// error) fails then, not at the timeout. A line that Wait is waiting
	// for is never a failure.
	FailFast func(line string) bool
}

// New returns a log and a logger that writes to it (and to t.Log when the
// test is verbose).
func New(t TB) (*Log, *slog.Logger) {
	l := &Log{cond: make(chan struct{}), t: t}
	return l, slog.New(&logHandler{l: l})
}

// NewRecorder returns a log and a logger that writes to it, for use
// outside a test (airlock test): Await instead of Wait.
func NewRecorder() (*Log, *slog.Logger) {
	l := &Log{cond: make(chan struct{})}
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

// Wait blocks until n lines contain all of parts, failing the test after
// Timeout, or at once on a FailFast line.
func (l *Log) Wait(n int, parts ...string) {
	l.t.Helper()
	if err := l.Await(n, parts...); err != nil {
		l.t.Fatal(err)
	}
}

// Await is Wait returning its failure, which quotes the log.
func (l *Log) Await(n int, parts ...string) error {
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		c, failed := 0, ""
		for _, line := range l.recs {
			switch {
			case containsAll(line, parts):
				c++
			case failed == "" && l.FailFast != nil && l.FailFast(line):
				failed = line
			}
		}
		ch := l.cond
		l.mu.Unlock()
		if c >= n {
			return nil
		}
		if failed != "" {
			return fmt.Errorf("waited for %d log lines with %q; have %d, and this line means there will be no more:\n  %s\nLog:\n%s", n, parts, c, failed, strings.Join(l.Lines(), "\n"))
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("waited %s for %d log lines with %q; have %d. Log:\n%s", timeout, n, parts, c, strings.Join(l.Lines(), "\n"))
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
	if h.l.t != nil && verbose() {
		h.l.t.Log(b.String())
	}
	return nil
}

// verbose reports whether the test binary runs with -test.v, as
// testing.Verbose does, from the flag the testing package registers: "true",
// or "test2json" under go test -json. Outside a test there is no such flag.
func verbose() bool {
	f := flag.Lookup("test.v")
	if f == nil {
		return false
	}
	v := f.Value.String()
	return v != "" && v != "false"
}
