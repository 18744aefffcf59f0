package conformance

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/internal/testenv"
)

// TestWireTable runs each SDK's own test of its codecs against the ABI's
// wire table (abi/testdata/wire.txt; package abi and internal/dbus test the
// host's codecs against it): go test in the SDK module, cargo test in
// sdk/rust, the C program sdk/c/test/wire.c built with clang for
// wasm32-wasi and run here, and npm test in sdk/assemblyscript. Each fails
// on a wrong row (a flipped byte in the table fails all four).
func TestWireTable(t *testing.T) {
	root := testenv.RepoRoot(t)
	table := filepath.Join(root, "abi", "testdata", "wire.txt")
	run := func(t *testing.T, cmd *exec.Cmd) {
		t.Helper()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s in %s: %v\n%s", cmd.Args, cmd.Dir, err, out)
		}
	}
	t.Run("go", func(t *testing.T) {
		gobin := testenv.NeedCommand(t, "go", "golang")
		cmd := exec.Command(gobin, "test", "-count=1", "-run", "^TestWireTable$", ".")
		cmd.Dir = filepath.Join(root, "sdk")
		run(t, cmd)
	})
	t.Run("rust", func(t *testing.T) {
		cargo := testenv.NeedCommand(t, "cargo", "cargo")
		cmd := exec.Command(cargo, "test", "--offline", "--test", "wire")
		cmd.Dir = filepath.Join(root, "sdk", "rust")
		cmd.Env = append(os.Environ(), "CARGO_TARGET_DIR="+t.TempDir(), "CARGO_TERM_COLOR=never")
		run(t, cmd)
	})
	t.Run("c", func(t *testing.T) {
		testenv.NeedToolchain(t, "c")
		wasm := filepath.Join(t.TempDir(), "wire.wasm")
		cmd := exec.Command("clang", "--target=wasm32-wasi", "-Os", "-Wall", "-Werror", "-I", filepath.Join(root, "sdk", "c"),
			"-o", wasm, filepath.Join(root, "sdk", "c", "test", "wire.c"))
		run(t, cmd)
		if out, err := runCommand(t, wasm, table); err != nil {
			t.Fatalf("sdk/c/test/wire.c: %v\n%s", err, out)
		}
	})
	t.Run("as", func(t *testing.T) {
		dir, _ := testenv.ASPackage(t)
		npm := testenv.NeedCommand(t, "npm", "npm")
		cmd := exec.Command(npm, "test", "--silent")
		cmd.Dir = dir
		run(t, cmd)
	})
	// The table itself: every row parses, and there is one of each kind.
	b, err := os.ReadFile(table)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := abi.ParseWireTable(b)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, r := range rows {
		kinds[r.Kind]++
	}
	if len(kinds) != 5 {
		t.Errorf("wire.txt has rows of kinds %v, want all five", kinds)
	}
}

// runCommand runs a WASI command module with stdin from the file in, and
// stubs for the airlock host functions it imports (each returns fault: a
// codec test calls none).
func runCommand(t *testing.T, wasm, in string) ([]byte, error) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	b, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := r.CompileModule(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	stubs := map[string]wazero.HostModuleBuilder{}
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == wasi_snapshot_preview1.ModuleName {
			continue
		}
		if stubs[mod] == nil {
			stubs[mod] = r.NewHostModuleBuilder(mod)
		}
		fault := api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) { stack[0] = uint64(abi.Fault) })
		stubs[mod].NewFunctionBuilder().WithGoModuleFunction(fault, f.ParamTypes(), f.ResultTypes()).Export(name)
	}
	for _, s := range stubs {
		if _, err := s.Instantiate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stdin, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var out bytes.Buffer
	_, err = r.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithStdin(stdin).WithStdout(&out).WithStderr(&out))
	return out.Bytes(), err
}
