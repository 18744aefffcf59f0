package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestVersion: both spellings print one line with go.mod's wazero and the
// Go this binary was built with.
func TestVersion(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/tetratelabs/wazero (\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod requires no wazero")
	}
	for _, arg := range []string{"version", "--version"} {
		r := airlock(arg)
		want := []string{"airlock ", "wazero " + string(m[1]) + ")", runtime.Version()}
		ok := r.code == 0 && r.stderr == "" && strings.Count(r.out, "\n") == 1
		for _, w := range want {
			ok = ok && strings.Contains(r.out, w)
		}
		if !ok {
			t.Errorf("airlock %s: %v\nwant one line on stdout with %q", arg, r, want)
		}
	}
}

// TestVersionFromLdflags: a build without a git checkout (a Docker build)
// is told its version and commit at link time, as the Dockerfile does.
func TestVersionFromLdflags(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "airlock")
	pkg := "github.com/airlockhq/airlock/internal/version"
	build := exec.Command("go", "build", "-buildvcs=false", "-o", bin,
		"-ldflags", "-X "+pkg+".Version=v9.8.7-test -X "+pkg+".Commit=0123abcd", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "airlock v9.8.7-test (commit 0123abcd, "; !strings.HasPrefix(string(out), want) {
		t.Errorf("airlock --version = %q, want it to start %q", out, want)
	}
}
