package logtest

import "testing"

// TestVerbose: logtest's own reading of -test.v agrees with testing's, so
// that New echoes lines to t.Log exactly when the test is verbose.
func TestVerbose(t *testing.T) {
	if got, want := verbose(), testing.Verbose(); got != want {
		t.Fatalf("verbose() = %v, testing.Verbose() = %v", got, want)
	}
}

// TestNewTakesTB: any testing.TB is a TB, and New's log records and waits.
func TestNewTakesTB(t *testing.T) {
	var _ TB = testing.TB(nil)
	log, logger := New(t)
	logger.Info("hello", "k", "v")
	log.Wait(1, "INFO hello", "k=v")
}
