// Package hostrun runs a whole airlock host inside a test: started in the
// background, stopped once at the end. It lives apart from testenv because it
// imports the host, which testenv's users inside the host's own packages
// cannot.
package hostrun

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
)

// Run is a host running for a test.
type Run struct {
	Host   *host.Host
	t      testing.TB
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// Start reads the runtime.toml at conf and runs the host until Stop, which
// t.Cleanup also calls. It fails the test if the host cannot be made.
func Start(t testing.TB, conf string, o host.Options) *Run {
	t.Helper()
	h, err := host.New(conf, o)
	if err != nil {
		t.Fatal(err)
	}
	return StartHost(t, h)
}

// StartHost runs h, made by the test, until Stop, which t.Cleanup also
// calls.
func StartHost(t testing.TB, h *host.Host) *Run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Run{Host: h, t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- h.Run(ctx) }()
	t.Cleanup(func() { r.Stop() })
	return r
}

// Stop cancels the host and waits for Run to return: the queues drain and
// every plugin gets stop. It returns Run's error, and is safe to call more
// than once. A host that does not stop within a minute fails the test.
func (r *Run) Stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(time.Minute):
			r.t.Error("host did not stop within a minute")
		}
	})
	return r.err
}
