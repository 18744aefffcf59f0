// Package bench measures airlock against its anchors in one run: raw wazero
// and the Extism Go SDK. run.sh turns the output into BENCHMARKS.md.
package bench

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/plugin"
)

var (
	payload32 = []byte("0123456789abcdef0123456789abcdef")
	value     = []byte("value")
)

// loadAirlock loads wasm as an airlock plugin with config key=value.
func loadAirlock(b *testing.B, wasm []byte, cache wazero.CompilationCache) *plugin.Plugin {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.wasm"), wasm, 0o644); err != nil {
		b.Fatal(err)
	}
	rt := manifest.DefaultRuntime()
	rt.File, rt.StateDir = filepath.Join(dir, "runtime.toml"), dir
	m, err := manifest.ParseManifest(filepath.Join(dir, "plugin.toml"), []byte("name = \"p\"\nwasm = \"p.wasm\"\n[config]\nkey = \"value\"\n"), &rt, manifest.Schema{})
	if err != nil {
		b.Fatal(err)
	}
	if cache == nil {
		cache = wazero.NewCompilationCache()
	}
	p, err := plugin.Load(context.Background(), m, plugin.Options{Runtime: &rt, Cache: cache, Gate: gate.New(nil), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// rawHost is the anchor's host module: the same two functions with the
// same work, registered the cheapest way wazero offers.
func rawHost(ctx context.Context, r wazero.Runtime) {
	i32 := api.ValueTypeI32
	pending := payload32
	r.NewHostModuleBuilder("airlock_v1").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
		m.Memory().WriteUint32Le(uint32(s[2]), uint32(len(pending)))
		m.Memory().Write(uint32(s[0]), pending)
		s[0] = 0
	}), []api.ValueType{i32, i32, i32}, []api.ValueType{i32}).Export("result_read").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
		k, _ := m.Memory().Read(uint32(s[0]), uint32(s[1]))
		if string(k) == "key" {
			m.Memory().WriteUint32Le(uint32(s[4]), 5)
			m.Memory().Write(uint32(s[2]), value)
		}
		s[0] = 0
	}), []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}).Export("config_get").
		Instantiate(ctx)
}

func rawModule(b *testing.B, interruptible bool) (api.Module, func()) {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(interruptible))
	rawHost(ctx, r)
	mod, err := r.InstantiateWithConfig(ctx, tinyModule(), wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		b.Fatal(err)
	}
	return mod, func() { r.Close(ctx) }
}

func extismPlugin(b *testing.B) *extism.Plugin {
	ctx := context.Background()
	i32 := extism.ValueTypeI32
	rr := extism.NewHostFunctionWithStack("result_read", func(ctx context.Context, p *extism.CurrentPlugin, s []uint64) {
		p.Memory().WriteUint32Le(uint32(s[2]), 32)
		p.Memory().Write(uint32(s[0]), payload32)
		s[0] = 0
	}, []extism.ValueType{i32, i32, i32}, []extism.ValueType{i32})
	rr.SetNamespace("airlock_v1")
	cg := extism.NewHostFunctionWithStack("config_get", func(ctx context.Context, p *extism.CurrentPlugin, s []uint64) {
		k, _ := p.Memory().Read(uint32(s[0]), uint32(s[1]))
		if string(k) == "key" {
			p.Memory().WriteUint32Le(uint32(s[4]), 5)
			p.Memory().Write(uint32(s[2]), value)
		}
		s[0] = 0
	}, []extism.ValueType{i32, i32, i32, i32, i32}, []extism.ValueType{i32})
	cg.SetNamespace("airlock_v1")
	p, err := extism.NewPlugin(ctx, extism.Manifest{Wasm: []extism.Wasm{extism.WasmData{Data: tinyModule()}}},
		extism.PluginConfig{EnableWasi: true}, []extism.HostFunction{rr, cg})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(ctx) })
	return p
}

// BenchmarkEventDelivery: host to plugin handler with a 32-byte payload
// that the handler reads.
func BenchmarkEventDelivery(b *testing.B) {
	b.Run("airlock", func(b *testing.B) {
		in, err := loadAirlock(b, tinyModule(), nil).Instantiate(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		ev := capability.Event{Kind: uint32(abi.EventTimer), Payload: payload32}
		b.ReportAllocs()
		for b.Loop() {
			if err := in.Handle(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("airlock-go-sdk", func(b *testing.B) {
		in, err := loadAirlock(b, goPlugin(b), nil).Instantiate(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		rec := abi.AppendRecord(nil, abi.Record{{Key: "name", Value: []byte("t")}, {Key: "x", Value: payload32[:16]}})
		ev := capability.Event{Kind: uint32(abi.EventTimer), Payload: rec}
		b.ReportAllocs()
		for b.Loop() {
			if err := in.Handle(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, interruptible := range []bool{false, true} {
		name := "wazero-raw"
		if interruptible {
			// The same, with the termination checks airlock needs to stop
			// a runaway plugin: it isolates their per-call cost.
			name = "wazero-raw-interruptible"
		}
		b.Run(name, func(b *testing.B) {
			mod, done := rawModule(b, interruptible)
			defer done()
			f := mod.ExportedFunction("airlock_on_event")
			ctx := context.Background()
			stack := make([]uint64, 2)
			b.ReportAllocs()
			for b.Loop() {
				stack[0], stack[1] = uint64(abi.EventTimer), 32
				if err := f.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("extism", func(b *testing.B) {
		p := extismPlugin(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := p.Call("run", payload32); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCapabilityCall: guest to host to guest, config_get of a short
// value; each op is 1000 calls from a guest loop, so ns/op / 1000 is the
// cost of one call.
func BenchmarkCapabilityCall(b *testing.B) {
	b.Run("airlock", func(b *testing.B) {
		in, err := loadAirlock(b, tinyModule(), nil).Instantiate(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		ev := capability.Event{Kind: 100}
		b.ReportAllocs()
		for b.Loop() {
			if err := in.Handle(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wazero-raw", func(b *testing.B) {
		mod, done := rawModule(b, false)
		defer done()
		f := mod.ExportedFunction("loop")
		stack := make([]uint64, 1)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			stack[0] = 1000
			if err := f.CallWithStack(ctx, stack); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("extism", func(b *testing.B) {
		p := extismPlugin(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := p.Call("loop1000", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

var goWasm []byte

// goPlugin builds examples/hello with the Go SDK, once.
func goPlugin(b *testing.B) []byte {
	if goWasm != nil {
		return goWasm
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	out := filepath.Join(os.TempDir(), "airlock-bench-hello.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./examples/hello")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build hello: %v\n%s", err, o)
	}
	w, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	goWasm = w
	return w
}
