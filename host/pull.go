package host

// Pulling [[bundle]]s: a bundle that is not cached is pulled in the
// background, retried with backoff and jitter until it succeeds (a device
// often boots before its network is up), and then loaded as hot reload
// loads a new plugin, without a restart. Until then status shows it as
// waiting, and an earlier pull of the same repository runs if the cache
// holds one (host/RATIONALE.md, "Why pull in the background?").

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/admin"
	"github.com/airlockhq/airlock/internal/bundle"
)

// pullTimeout bounds one pull, so that a connection that hangs is retried
// rather than waited on for ever.
const pullTimeout = 5 * time.Minute

// waiting is a [[bundle]] whose pull failed and will be tried again.
type waiting struct {
	attempts int       // failed so far; 0 during the first
	next     time.Time // of the next attempt
	err      error     // of the last attempt; nil during the first
	earlier  string    // the cached pin that runs meanwhile, or ""
}

// pullBundles pulls every [[bundle]] that is not cached, each on a
// goroutine of its own; the returned func stops them and waits.
func (h *Host) pullBundles(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, c := range bundle.Cache(h.rt) {
		if c.Path != "" && c.Earlier == "" {
			continue
		}
		wg.Go(func() { h.pullUntilDone(ctx, c.Ref, c.Earlier) })
	}
	return func() { cancel(); wg.Wait() }
}

// pullUntilDone pulls ref until it succeeds or ctx ends, then loads it.
// The credentials are read afresh at each attempt, so that a device
// provisioned (or logged in) after boot needs no restart.
func (h *Host) pullUntilDone(ctx context.Context, ref, earlier string) {
	// Listed from the start, so that a first attempt that hangs on the
	// network is not invisible.
	h.mu.Lock()
	h.waiting[ref] = &waiting{earlier: earlier}
	h.mu.Unlock()
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, pullTimeout)
		err := h.opts.Pull(pctx, h.rt, ref)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			h.mu.Lock()
			delete(h.waiting, ref)
			h.mu.Unlock()
			h.log.Info("bundle pulled", "bundle", ref, "attempts", attempt)
			h.sync(ctx, []string{ref})
			return
		}
		wait := retryWait(h.rt.Registry, attempt)
		h.mu.Lock()
		h.waiting[ref] = &waiting{attempts: attempt, next: time.Now().Add(wait), err: err, earlier: earlier}
		h.mu.Unlock()
		args := []any{"bundle", ref, "attempt", attempt, "next_in", wait.Round(time.Millisecond).String(), "error", err.Error()}
		if earlier != "" {
			args = append(args, "meanwhile", earlier)
		}
		h.log.Warn("waiting for registry", args...)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// retryWait is the wait after the attempt-th failed pull: retry_initial,
// doubling up to retry_max, of which a random half is taken off, so that
// devices that lost the registry together do not come back together.
func retryWait(r manifest.Registry, attempt int) time.Duration {
	d, limit := time.Duration(r.RetryInitial), time.Duration(r.RetryMax)
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + rand.N(d/2+1)
}

// waitingReport lists the bundles waiting for their registry. The caller
// holds mu.
func (h *Host) waitingReport() []admin.Waiting {
	out := []admin.Waiting{}
	for ref, w := range h.waiting {
		r := admin.Waiting{Ref: ref, Attempts: w.attempts, Earlier: w.earlier}
		if w.err != nil {
			r.NextIn, r.Error = admin.NextIn(time.Until(w.next)), w.err.Error()
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out
}
