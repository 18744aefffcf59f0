package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/isolate"
	"github.com/airlockhq/airlock/internal/plugin"
)

func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func TestCLIErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"run", "--config", "/nonexistent/runtime.toml"}, 1, "read runtime config: open /nonexistent/runtime.toml: no such file or directory (pass another with --config)"},
		{[]string{"check"}, 2, "Usage: airlock check"},
		{[]string{"check", "/nonexistent"}, 1, "read manifest"},
		{[]string{"build", t.TempDir()}, 1, "holds no Go source"},
		{[]string{"run", "--help"}, 0, "-config"},
		{[]string{"help"}, 0, "Usage:"},
		{[]string{"check", "--nonsense", "x"}, 2, "flag provided but not defined: -nonsense\nUsage: airlock check"},
		{[]string{"build", "a", "b"}, 2, "Usage: airlock build"},
	}
	for _, c := range cases {
		r := airlock(c.args...)
		if printed, other := r.streams(); r.code != c.code || !strings.Contains(printed, c.want) || other != "" {
			t.Errorf("airlock %v: %v\nwant exit %d and %q, on stdout for exit 0, else on stderr", c.args, r, c.code, c.want)
		}
	}
}

func TestCheckAndBuild(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	for _, f := range []string{"main.go", "plugin.toml"} {
		b, err := os.ReadFile(filepath.Join(root, "examples", "ticker", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "airlock build") {
		t.Fatalf("check before build: exit %d, %s", code, errb.String())
	}
	// The copied source imports the Go SDK, a module of its own.
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module ticker\n\ngo 1.24\n\nrequire github.com/airlockhq/airlock/sdk v0.0.0\n\nreplace github.com/airlockhq/airlock/sdk => "+filepath.Join(root, "sdk")+"\n"), 0o644)
	out.Reset()
	if code := run([]string{"build", dir}, &out, &errb); code != 0 {
		t.Fatalf("build: exit %d: %s", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "--config", filepath.Join(root, "runtime.toml"), dir}, &out, &errb); code != 0 {
		t.Fatalf("check: exit %d: %s", code, errb.String())
	}
	// A Go module is past bigModule: check says that it is compiling.
	if want := "as airlock run would; a module this size takes a while...\n"; !strings.HasPrefix(errb.String(), "compiling ") || !strings.HasSuffix(errb.String(), want) {
		t.Errorf("check's progress: %q, want one line ending %q", errb.String(), want)
	}
	for _, want := range []string{"ticker 1.0.0: ok", "grants:   storage.data (/data)", `timer minute (cron "* * * * *")`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestMain lets this test binary be the compiling child that airlock run
// and airlock check start (os.Executable is the test binary here).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == compileCommand {
		if log := os.Getenv(compiledLog); log != "" {
			recordCompiled(log)
		}
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// compiledLog names, in the compiling child's environment, a file to which
// it appends the sha256 of each module it is given to compile.
const compiledLog = "AIRLOCK_TEST_COMPILED"

// recordCompiled appends the sha256 of the module on stdin to the file
// log, and leaves the module on a new stdin for the compile.
func recordCompiled(log string) {
	wasm, err := io.ReadAll(os.Stdin)
	if err == nil {
		var f *os.File
		if f, err = os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			_, err = fmt.Fprintf(f, "%x\n", sha256.Sum256(wasm))
			f.Close()
		}
	}
	r, w, perr := os.Pipe()
	if err != nil || perr != nil {
		fmt.Fprintln(os.Stderr, "record the compiled module:", err, perr)
		os.Exit(1)
	}
	go func() { w.Write(wasm); w.Close() }()
	os.Stdin = r
}

// TestCheckCompilesWhatRunCompiles: airlock check and airlock run (Load,
// with the options the host gives it) give the compiling child the same
// bytes: the module instrumented for the watchdog, not the module as built.
func TestCheckCompilesWhatRunCompiles(t *testing.T) {
	dir := t.TempDir()
	wasm := abiModule(false)
	os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte("name = \"same\"\nversion = \"0.1.0\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "same.wasm"), wasm, 0o644)
	compiled := filepath.Join(t.TempDir(), "compiled")
	t.Setenv(compiledLog, compiled)
	if r := airlock("check", dir); r.code != 0 {
		t.Fatal(r)
	}

	ctx := context.Background()
	rt := manifest.DefaultRuntime()
	rt.StateDir = t.TempDir()
	caps := builtin.Capabilities()
	m, err := manifest.LoadManifest(filepath.Join(dir, "plugin.toml"), &rt, host.Schema(caps))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close(ctx)
	compile := isolate.Compiler(exe, []string{compileCommand}, isolate.Limits{})
	p, err := plugin.Load(ctx, m, plugin.Options{Runtime: &rt, Cache: cache, InstrumentCache: filepath.Join(cacheDir, "instrumented"),
		Capabilities: caps, Gate: gate.New(nil), Logger: slog.New(slog.DiscardHandler),
		Precompile: func(ctx context.Context, wasm []byte, closeOnContextDone bool) error {
			return compile(ctx, cacheDir, wasm, closeOnContextDone)
		}})
	if err != nil {
		t.Fatal(err)
	}
	p.Close(ctx)

	b, err := os.ReadFile(compiled)
	if err != nil {
		t.Fatal(err)
	}
	got, orig := strings.Fields(string(b)), fmt.Sprintf("%x", sha256.Sum256(wasm))
	if len(got) != 2 || got[0] != got[1] || got[0] == orig {
		t.Fatalf("the compiling child got modules %q (check's, then run's); want twice the same, and not the module as built (%s)", got, orig)
	}
}

// TestCheckCompilesInAChild: check compiles as airlock run does, in a
// child, and says what the compiler refused, on one line.
func TestCheckCompilesInAChild(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte("name = \"bad\"\nversion = \"0.1.0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// (func (result i32)) with an empty body: well formed, but invalid.
	bad := []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7f, 3, 2, 1, 0, 10, 4, 1, 2, 0, 0x0b}
	if err := os.WriteFile(filepath.Join(dir, "bad.wasm"), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"check", dir}, &out, &errb)
	want := "bad.wasm was not compiled: not a valid WebAssembly module: "
	if code != 1 || !strings.Contains(errb.String(), want) || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
		t.Fatalf("check of an invalid module: exit %d, stderr %q; want exit 1 and one line with %q", code, errb.String(), want)
	}
}

// airlock check refuses what Load would: a module whose tables at start
// take more than limits.memory.
func TestCheckRefusesAFootprintPastMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte("name = \"big\"\nversion = \"0.1.0\"\n[limits]\nmemory = \"16MiB\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// (table 3000000 funcref): 24 MiB of entries at instantiation.
	big := []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 4, 7, 1, 0x70, 0x00, 0xc0, 0x8d, 0xb7, 0x01}
	if err := os.WriteFile(filepath.Join(dir, "big.wasm"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"check", dir}, &out, &errb)
	if want := "3000000 table entries"; code != 1 || !strings.Contains(errb.String(), want) || !strings.Contains(errb.String(), "above limits.memory = 16MiB") {
		t.Fatalf("check: exit %d, stderr %q; want exit 1 and a refusal naming %q", code, errb.String(), want)
	}
}

// abiModule is a minimal ABI v1 module; withDBus adds an import of
// airlock_dbus_v1.
func abiModule(withDBus bool) []byte {
	str := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	section := func(id byte, body ...[]byte) []byte {
		b := bytes.Join(body, nil)
		return append([]byte{id, byte(len(b))}, b...)
	}
	// types: 0 (i32, i32) -> i32, 1 () -> ()
	parts := [][]byte{{0, 'a', 's', 'm', 1, 0, 0, 0}, section(1, []byte{2, 0x60, 2, 0x7f, 0x7f, 1, 0x7f, 0x60, 0, 0})}
	first := byte(0) // the first function defined
	if withDBus {
		// import airlock_dbus_v1.call of type 0
		parts, first = append(parts, section(2, []byte{1}, str("airlock_dbus_v1"), str("call"), []byte{0, 0})), 1
	}
	return bytes.Join(append(parts,
		// functions airlock_abi_v1 (type 1) and airlock_on_event (type 0)
		section(3, []byte{2, 1, 0}),
		section(7, []byte{2}, str("airlock_abi_v1"), []byte{0, first}, str("airlock_on_event"), []byte{0, first + 1}),
		section(10, []byte{2, 2, 0, 0x0b, 4, 0, 0x41, 0, 0x0b}),
	), nil)
}

// TestCheckRefusesUngrantedImport: check refuses a module that imports a
// capability its manifest does not grant, with run's message (it panicked
// on a nil gate). Flags may follow the plugin directory.
func TestCheckRefusesUngrantedImport(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte("name = \"nodbus\"\nversion = \"0.1.0\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "nodbus.wasm"), abiModule(true), 0o644)
	conf := filepath.Join(t.TempDir(), "runtime.toml")
	os.WriteFile(conf, []byte("plugins = [\"plugins\"]\n"), 0o644)
	r := airlock("check", dir, "--config", conf)
	want := `plugin.toml has no [dbus] section (add a [dbus] section to ` + filepath.Join(dir, "plugin.toml")
	if r.code != 1 || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "panic") {
		t.Fatalf("%v\nwant exit 1 and %q", r, want)
	}
}

// TestCheckNamesTheHostFunction: a module that imports a granted host
// function with the wrong signature is refused by check, as by run, with
// the host function's parameter names (before, check passed it and run
// failed at instantiation with wazero's bare types).
func TestCheckNamesTheHostFunction(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte("name = \"baddbus\"\nversion = \"0.1.0\"\n[[dbus.call]]\ndestination = \"org.freedesktop.hostname1\"\npath = \"/org/freedesktop/hostname1\"\ninterface = \"org.freedesktop.hostname1\"\nmember = \"SetHostname\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "baddbus.wasm"), abiModule(true), 0o644) // imports call as (i32, i32) -> i32
	conf := filepath.Join(t.TempDir(), "runtime.toml")
	os.WriteFile(conf, []byte("plugins = [\"plugins\"]\n"), 0o644)
	r := airlock("check", dir, "--config", conf)
	want := "imports airlock_dbus_v1.call as (i32, i32) -> (i32), but the host's is call(req_ptr, req_len, out_ptr, out_cap, out_len_ptr) -> (i32)"
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("%v\nwant exit 1 and %q", r, want)
	}
}
