package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Builders of plugins in the SDKs' other languages. Each one builds from
// source, once per test binary, and calls Missing when its toolchain is
// absent, so that CI (AIRLOCK_TEST_STRICT=1) fails instead of skipping.
// sdk/README.md lists the packages that provide each toolchain.

// Lang is a guest language that an SDK covers.
type Lang struct {
	Name  string                                // "go", "c", "rust", "as"
	Build func(t testing.TB, dir string) string // dir relative to the repository root
}

// Langs lists every SDK language, Go (the reference) first.
var Langs = []Lang{
	{"go", BuildGo},
	{"c", BuildC},
	{"rust", BuildRust},
	{"as", BuildAS},
}

// outPath returns where a build of dir goes, or "" and true if it is built.
// The caller holds buildMu.
func outPath(t testing.TB, lang, dir string) (string, bool) {
	key := lang + ":" + dir
	if p, ok := built[key]; ok {
		return p, true
	}
	if buildDir == "" {
		var err error
		if buildDir, err = os.MkdirTemp("", "airlock-test-wasm-"); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(buildDir, lang+"_"+strings.ReplaceAll(dir, "/", "_")+".wasm"), false
}

func run(t testing.TB, what string, cmd *exec.Cmd) {
	t.Helper()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %s: %v\n%s", what, strings.Join(cmd.Args, " "), err, b)
	}
}

// CFlags are the flags that build a C plugin: a WASI reactor, small, with
// the SDK's header on the include path.
var CFlags = []string{"--target=wasm32-wasi", "-mexec-model=reactor", "-Os", "-Wall", "-Wl,--strip-all"}

// BuildC compiles the .c files in dir with clang against sdk/c.
func BuildC(t testing.TB, dir string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	out, ok := outPath(t, "c", dir)
	if ok {
		return out
	}
	clang, err := exec.LookPath("clang")
	if err != nil {
		Missing(t, "clang, to build C plugins (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32)")
	}
	root := RepoRoot(t)
	srcs, _ := filepath.Glob(filepath.Join(root, dir, "*.c"))
	if len(srcs) == 0 {
		t.Fatalf("build %s: no .c files", dir)
	}
	args := append(append([]string{}, CFlags...), "-I", filepath.Join(root, "sdk", "c"), "-o", out)
	cmd := exec.Command(clang, append(args, srcs...)...)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	if err != nil {
		if s := string(b); strings.Contains(s, "wasi-sysroot") || strings.Contains(s, "stdio.h' file not found") ||
			strings.Contains(s, "libclang_rt.builtins-wasm32") || strings.Contains(s, "wasm-ld") {
			Missing(t, "the wasm32-wasi C toolchain (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32): "+firstLine(s))
		}
		t.Fatalf("build %s: %v\n%s", dir, err, b)
	}
	built["c:"+dir] = out
	return out
}

// rustToolchain finds a rustc with the standard library for wasm32-wasi
// (Debian's rustc with libstd-rust-dev-wasm32 at /usr/bin comes first, since
// that is what CI installs; AIRLOCK_RUSTC overrides) and the target's name
// for it: wasm32-wasi, or wasm32-wasip1 on a rustc from 1.78 on.
func rustToolchain() (rustc, cargo, target string, err error) {
	candidates := []string{os.Getenv("AIRLOCK_RUSTC"), "/usr/bin/rustc"}
	if p, err := exec.LookPath("rustc"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		b, err := exec.Command(c, "--print", "sysroot").Output()
		if err != nil {
			continue
		}
		sysroot := strings.TrimSpace(string(b))
		for _, tg := range []string{"wasm32-wasi", "wasm32-wasip1"} {
			if _, err := os.Stat(filepath.Join(sysroot, "lib", "rustlib", tg, "lib")); err == nil {
				cargo := filepath.Join(filepath.Dir(c), "cargo")
				if _, err := os.Stat(cargo); err != nil {
					if cargo, err = exec.LookPath("cargo"); err != nil {
						continue
					}
				}
				return c, cargo, tg, nil
			}
		}
	}
	return "", "", "", fmt.Errorf("no rustc with the wasm32-wasi standard library")
}

// RustToolchain describes the Rust toolchain that BuildRust uses.
func RustToolchain() string {
	rustc, _, target, err := rustToolchain()
	if err != nil {
		return err.Error()
	}
	b, _ := exec.Command(rustc, "--version").Output()
	return strings.TrimSpace(string(b)) + " (" + rustc + ", target " + target + ")"
}

// BuildRust builds the cargo package in dir (a cdylib depending on
// sdk/rust) for wasm32-wasi; sdk/rust/README.md says why a cdylib.
func BuildRust(t testing.TB, dir string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	out, ok := outPath(t, "rust", dir)
	if ok {
		return out
	}
	rustc, cargo, target, err := rustToolchain()
	if err != nil {
		Missing(t, "a Rust toolchain for wasm32-wasi (apt-get install rustc cargo libstd-rust-dev-wasm32)")
	}
	root := RepoRoot(t)
	targetDir := filepath.Join(buildDir, "cargo-target")
	cmd := exec.Command(cargo, "build", "--offline", "--release", "--target", target)
	cmd.Dir = filepath.Join(root, dir)
	cmd.Env = append(os.Environ(), "RUSTC="+rustc, "CARGO_TARGET_DIR="+targetDir,
		"CARGO_TERM_COLOR=never")
	run(t, "build "+dir, cmd)
	wasms, _ := filepath.Glob(filepath.Join(targetDir, target, "release", "*.wasm"))
	var found string
	want := cargoName(t, filepath.Join(root, dir, "Cargo.toml"))
	for _, w := range wasms {
		if strings.TrimSuffix(filepath.Base(w), ".wasm") == strings.ReplaceAll(want, "-", "_") {
			found = w
		}
	}
	if found == "" {
		t.Fatalf("build %s: cargo made no %s.wasm (have %v)", dir, want, wasms)
	}
	b, err := os.ReadFile(found)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	built["rust:"+dir] = out
	return out
}

func cargoName(t testing.TB, file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "name" {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	t.Fatalf("%s: no package name", file)
	return ""
}

var (
	npmMu        sync.Mutex
	npmInstalled bool
)

// ASPackage returns sdk/assemblyscript with its node_modules installed
// (npm ci, once per test binary, when asc is absent), and node.
func ASPackage(t testing.TB) (dir, node string) {
	t.Helper()
	npmMu.Lock()
	defer npmMu.Unlock()
	npm, err := exec.LookPath("npm")
	if err != nil {
		Missing(t, "npm, to build AssemblyScript plugins (apt-get install nodejs npm)")
	}
	dir = filepath.Join(RepoRoot(t), "sdk", "assemblyscript")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "asc")); err != nil && !npmInstalled {
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			Missing(t, fmt.Sprintf("the assemblyscript compiler (npm ci in sdk/assemblyscript failed: %v: %s)", err, lastLines(string(b), 5)))
		}
		npmInstalled = true
	}
	if node, err = exec.LookPath("node"); err != nil {
		Missing(t, "node, to run the AssemblyScript compiler (apt-get install nodejs)")
	}
	return dir, node
}

// BuildAS compiles dir/assembly/index.ts with the AssemblyScript compiler
// pinned in sdk/assemblyscript/package.json and that package's
// asconfig.json.
func BuildAS(t testing.TB, dir string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	out, ok := outPath(t, "as", dir)
	if ok {
		return out
	}
	sdk, node := ASPackage(t)
	entry := filepath.Join(RepoRoot(t), dir, "assembly", "index.ts")
	asc := filepath.Join(sdk, "node_modules", ".bin", "asc")
	cmd := exec.Command(node, asc, entry, "--config", filepath.Join(sdk, "asconfig.json"), "--target", "release", "--outFile", out)
	cmd.Dir = sdk
	run(t, "build "+dir, cmd)
	built["as:"+dir] = out
	return out
}

// InstallPlugin makes a plugin directory under parent with the given
// manifest and the module at wasm, and returns its path.
func InstallPlugin(t testing.TB, parent, name, manifest, wasm string) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".wasm"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// NeedToolchain calls Missing unless the toolchain that builds lang's
// plugins is installed, for tests that build a plugin the way its author
// does (with the project's own build script) rather than through Build*.
func NeedToolchain(t testing.TB, lang string) {
	t.Helper()
	switch lang {
	case "go":
		NeedCommand(t, "go", "golang (or go.dev/dl)")
	case "c":
		const pkgs = "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"
		clang := NeedCommand(t, "clang", "clang lld wasi-libc libclang-rt-dev-wasm32")
		for _, flag := range []string{"-print-file-name=libc.a", "-print-libgcc-file-name"} {
			b, err := exec.Command(clang, "--target=wasm32-wasi", flag).Output()
			p := strings.TrimSpace(string(b))
			if _, statErr := os.Stat(p); err != nil || !filepath.IsAbs(p) || statErr != nil {
				Missing(t, "the wasm32-wasi C library or runtime ("+pkgs+"): clang "+flag+" gives "+p)
			}
		}
	case "rust":
		if _, _, _, err := rustToolchain(); err != nil {
			Missing(t, "a Rust toolchain for wasm32-wasi (apt-get install rustc cargo libstd-rust-dev-wasm32, or rustup target add wasm32-wasip1)")
		}
	case "as":
		NeedCommand(t, "node", "nodejs")
		NeedCommand(t, "npm", "npm")
	default:
		t.Fatalf("testenv: unknown language %q", lang)
	}
}
