package clitest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// TestStartupSmallestFirst: airlock run starts a small C plugin as soon as
// it has compiled, before a Go plugin's module (a hundred times larger) has
// finished compiling, instead of starting both after the slower.
func TestStartupSmallestFirst(t *testing.T) {
	testenv.NeedToolchain(t, "c")
	testenv.NeedToolchain(t, "go")
	a := newAuthor(t)
	work := t.TempDir()
	a.must(work, "airlock", "new", "--lang", "go", "big-go")
	a.must(work, "airlock", "new", "--lang", "c", "small-c")
	a.must(filepath.Join(work, "big-go"), "airlock", "build", ".")
	a.must(filepath.Join(work, "small-c"), "./build.sh")
	// A cold cache: both compile now. The Go plugin comes first in
	// plugins, so file order alone would start it first.
	conf := filepath.Join(work, "runtime.toml")
	rt := fmt.Sprintf("plugins = [%q, %q]\nstate_dir = %q\nbuild = \"never\"\n[scenario]\nplay = \"none\"\n[log]\naudit = \"off\"\n",
		filepath.Join(work, "big-go"), filepath.Join(work, "small-c"), filepath.Join(work, "state"))
	if err := os.WriteFile(conf, []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	p := a.start(work, "run", "--config", conf)
	p.wait("airlock running")
	p.mu.Lock()
	lines := append([]string(nil), p.lines...)
	p.mu.Unlock()
	at := func(parts ...string) int {
		for i, l := range lines {
			if containsAll(l, parts) {
				return i
			}
		}
		t.Fatalf("no line with %q:\n%s", parts, strings.Join(lines, "\n"))
		return -1
	}
	if small, big := at("hello from small-c"), at("compiled plugin", "plugin=big-go"); small > big {
		t.Errorf("small-c started (line %d) after big-go compiled (line %d):\n%s", small, big, strings.Join(lines, "\n"))
	}
	p.stop()
}
