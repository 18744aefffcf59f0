package host

import (
	"testing"
	"time"

	"github.com/airlockhq/airlock/host/manifest"
)

// TestRetryWait: the wait doubles from retry_initial up to retry_max, and
// jitter takes at most half off, never adds.
func TestRetryWait(t *testing.T) {
	r := manifest.Registry{RetryInitial: manifest.Duration(time.Second), RetryMax: manifest.Duration(10 * time.Second)}
	for attempt, full := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		seen := map[time.Duration]bool{}
		for range 200 {
			w := retryWait(r, attempt)
			if w < full/2 || w > full {
				t.Fatalf("attempt %d: waited %s, want between %s and %s", attempt, w, full/2, full)
			}
			seen[w] = true
		}
		if len(seen) < 2 {
			t.Errorf("attempt %d: 200 waits were all %v: no jitter", attempt, seen)
		}
	}
}
