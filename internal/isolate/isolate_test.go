package isolate_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/airlockhq/airlock/internal/isolate"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/wasmbin"
)

func TestMain(m *testing.M) {
	testenv.IsolateChild()
	os.Exit(m.Run())
}

// tiny is (func (export "f") (result i32) i32.const 42).
var tiny = []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
	1, 5, 1, 0x60, 0, 1, 0x7f,
	3, 2, 1, 0,
	7, 5, 1, 1, 'f', 0, 0,
	10, 6, 1, 4, 0, 0x41, 42, 0x0b}

// cached lists the files of wazero's cache under dir.
func cached(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "wazero-*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestChildFillsTheCache: the child compiles into the cache, and the host's
// own compile of the same module, with the same settings, then finds it
// there instead of compiling again.
func TestChildFillsTheCache(t *testing.T) {
	dir := t.TempDir()
	if err := testenv.IsolateCompiler(isolate.Limits{})(context.Background(), dir, tiny, false); err != nil {
		t.Fatal(err)
	}
	after := cached(t, dir)
	if len(after) != 1 {
		t.Fatalf("the cache holds %v after the child's compile, want one module", after)
	}
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close(ctx)
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
	defer r.Close(ctx)
	if _, err := r.CompileModule(ctx, tiny); err != nil {
		t.Fatal(err)
	}
	if again := cached(t, dir); len(again) != 1 {
		t.Errorf("the host's compile added to the cache (%v): the child compiled with other settings", again)
	}
}

// TestChildMemoryLimit: a module that makes the compiler take hundreds of
// megabytes fails in the child, with an error that says why.
func TestChildMemoryLimit(t *testing.T) {
	err := testenv.IsolateCompiler(isolate.Limits{Memory: 256 << 20})(context.Background(), t.TempDir(), testenv.JoinBomb(5700), false)
	if err == nil || !strings.Contains(err.Error(), "more than 256 MiB of memory") {
		t.Fatalf("compiling the bomb under 256 MiB: %v, want the memory limit's error", err)
	}
}

// TestChildTimeout: a compile past its time is stopped, and says so.
func TestChildTimeout(t *testing.T) {
	err := testenv.IsolateCompiler(isolate.Limits{Timeout: time.Nanosecond})(context.Background(), t.TempDir(), tiny, false)
	if err == nil || !strings.Contains(err.Error(), "took longer than 1ns") {
		t.Fatalf("compiling with a 1 ns limit: %v, want the time limit's error", err)
	}
}

// TestChildRefusesAnInvalidModule: wazero's refusal reaches the caller as
// one line.
func TestChildRefusesAnInvalidModule(t *testing.T) {
	err := testenv.IsolateCompiler(isolate.Limits{})(context.Background(), t.TempDir(), []byte("\x00asm\x01\x00\x00\x00\x0a\x01"), false)
	if err == nil || !strings.HasPrefix(err.Error(), "not a valid WebAssembly module: ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("compiling a truncated module: %v, want wazero's error on one line", err)
	}
}

// TestChildPanicIsOneLine: a child that crashes with a panic it did not
// recover gives the caller the panic's message, not every goroutine's
// stack. The child here is a shell that prints what Go prints.
func TestChildPanicIsOneLine(t *testing.T) {
	crash := `printf 'panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/x.go:1 +0x1\nexit status 2\n' >&2; exit 2`
	err := isolate.Compiler("/bin/sh", []string{"-c", crash, "sh"}, isolate.Limits{})(context.Background(), t.TempDir(), tiny, false)
	if err == nil || err.Error() != "panic: boom" {
		t.Fatalf("a child that panicked: %v, want %q", err, "panic: boom")
	}
}

// TestChildRefusesWhatWazeroPanicsOn: a panic in wazero's compile reaches
// the caller as one line naming it, not as the child's stacks.
func TestChildRefusesWhatWazeroPanicsOn(t *testing.T) {
	err := testenv.IsolateCompiler(isolate.Limits{})(context.Background(), t.TempDir(), testenv.WazeroPanic(), false)
	if err == nil || !strings.Contains(err.Error(), "a bug in wazero") || strings.Contains(err.Error(), "goroutine") {
		t.Fatalf("compiling a module wazero panics on: %v, want the panic's message alone", err)
	}
}

// TestCompileRecoversWazeroPanics: wazero panics on testenv.WazeroPanic,
// and Compile, which every compile of guest bytes goes through, makes that
// an error instead of a panic that would stop the host.
func TestCompileRecoversWazeroPanics(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("wazero no longer panics on the module: Compile's recover is no longer tested by it (find another, or drop this test if wazero panics no more)")
			}
		}()
		r.CompileModule(ctx, testenv.WazeroPanic())
	}()
	_, err := isolate.Compile(ctx, r, testenv.WazeroPanic())
	if err == nil || !strings.Contains(err.Error(), "index out of range") || !strings.Contains(err.Error(), "a bug in wazero") {
		t.Fatalf("Compile: %v, want the panic as an error", err)
	}
	if err := wasmbin.CheckCounts(testenv.WazeroPanic()); err == nil {
		t.Error("CheckCounts accepts the module, so Load would let wazero see it")
	}
}
