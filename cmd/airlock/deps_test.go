package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTestingLinked: the production binary does not link the testing
// package. airlock test and airlock dev reach host/logtest through
// internal/solo; logtest takes a test's TB as an interface so that it need not
// import testing (host/RATIONALE.md, "Why does logtest not import
// testing?").
func TestNoTestingLinked(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	for _, d := range deps {
		if d == "testing" || strings.HasPrefix(d, "testing/") {
			t.Errorf("cmd/airlock links %s, which a production binary must not; find its importer with: go list -deps -f '{{.ImportPath}} {{.Imports}}' ./cmd/airlock | grep -w %s", d, d)
		}
	}
}
