package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// RepoRoot returns the repository's root directory: the nearest above
// this file that holds go.mod, wherever the package lives.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	for dir := filepath.Dir(file); ok; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		ok = dir != filepath.Dir(dir)
	}
	t.Fatal("testenv: cannot locate the repository")
	return ""
}

var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildDir string
)

// BuildGo compiles the Go plugin in dir (relative to the repository root,
// such as "examples/hello") to a wasip1 reactor, once per test binary, and
// returns the module's path. Plugins in tests are always built from source.
func BuildGo(t testing.TB, dir string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[dir]; ok {
		return p
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		Missing(t, "the go command, to build test plugins")
	}
	if buildDir == "" {
		if buildDir, err = os.MkdirTemp("", "airlock-test-wasm-"); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(buildDir, strings.ReplaceAll(dir, "/", "_")+".wasm")
	cmd := exec.Command(gobin, "build", "-buildmode=c-shared", "-o", out, "./"+dir)
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", dir, err, b)
	}
	built[dir] = out
	return out
}

// PluginDir makes a plugin directory under parent with the given manifest
// and the module built from src, and returns its path.
func PluginDir(t testing.TB, parent, name, manifest, src string) string {
	t.Helper()
	b, err := os.ReadFile(BuildGo(t, src))
	if err != nil {
		t.Fatal(err)
	}
	return WasmPluginDir(t, parent, name, manifest, b)
}

// WasmPluginDir writes a plugin directory parent/name with manifest as its
// plugin.toml and wasm as its module (name.wasm), for modules a test
// assembles itself (Module).
func WasmPluginDir(t testing.TB, parent, name, manifest string, wasm []byte) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

var airlockBin struct {
	once sync.Once
	path string
	err  error
}

// Airlock builds cmd/airlock once per test binary and returns the path of
// the binary, for tests that run the CLI as a user does: as a subprocess.
// The binary is alone in its directory, so that directory can go first on
// a subprocess's PATH.
func Airlock(t testing.TB) string {
	t.Helper()
	airlockBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "airlock-test-bin-")
		if err != nil {
			airlockBin.err = err
			return
		}
		airlockBin.path = filepath.Join(dir, "airlock")
		build := exec.Command("go", "build", "-o", airlockBin.path, "./cmd/airlock")
		build.Dir = RepoRoot(t)
		if out, err := build.CombinedOutput(); err != nil {
			airlockBin.err = fmt.Errorf("build airlock: %v\n%s", err, out)
		}
	})
	if airlockBin.err != nil {
		t.Fatal(airlockBin.err)
	}
	return airlockBin.path
}
