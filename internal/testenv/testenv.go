// Package testenv is the shared setup of airlock's tests: prerequisites that
// skip (or, under AIRLOCK_TEST_STRICT=1, fail), and building plugins from
// source. Every test that needs an outside tool goes through here, so that CI
// can never pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Strict reports whether a missing prerequisite must fail the test instead of
// skipping it. CI sets AIRLOCK_TEST_STRICT=1.
func Strict() bool { return os.Getenv("AIRLOCK_TEST_STRICT") == "1" }

// Missing skips t, or fails it in strict mode, because a prerequisite is
// absent. why says what is missing and how to get it.
func Missing(t testing.TB, why string) {
	t.Helper()
	if Strict() {
		t.Fatalf("prerequisite missing (AIRLOCK_TEST_STRICT=1): %s", why)
	}
	t.Skipf("prerequisite missing: %s (set AIRLOCK_TEST_STRICT=1 to fail instead)", why)
}

// NeedCommand returns the path of a command, or calls Missing.
func NeedCommand(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found; install it with apt-get install "+pkg)
	}
	return p
}

// NeedRoot calls Missing unless the test runs as root.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root is needed to "+why)
	}
}
