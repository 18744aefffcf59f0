package plugin_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/logtest"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/wasmbin"
)

// spinHandler is a handler that never returns: loop br 0 end unreachable.
var spinHandler = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x00, 0x0b}

// cachedLoad is plugin "p" on disk and the options that load it.
type cachedLoad struct {
	m *manifest.Manifest
	o plugin.Options
}

// newCachedLoad is plugin "p" with a handler timeout of 100 ms, loaded
// with an instrument cache as the host does.
func newCachedLoad(tb testing.TB, wasm []byte, cache string, logger *slog.Logger) cachedLoad {
	tb.Helper()
	return onDisk(tb, wasm, "[limits]\nhandler_timeout = \"100ms\"\n", cache, logger)
}

// onDisk writes wasm as plugin "p", with the given extra manifest lines,
// and returns what loads it with the instrument cache cache ("" for none).
func onDisk(tb testing.TB, wasm []byte, manifestExtra, cache string, logger *slog.Logger) cachedLoad {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.wasm"), wasm, 0o644); err != nil {
		tb.Fatal(err)
	}
	rt := manifest.DefaultRuntime()
	rt.File, rt.StateDir = filepath.Join(dir, "runtime.toml"), dir
	m, err := manifest.ParseManifest(filepath.Join(dir, "plugin.toml"), []byte("name = \"p\"\nwasm = \"p.wasm\"\n"+manifestExtra), &rt, manifest.Schema{})
	if err != nil {
		tb.Fatal(err)
	}
	return cachedLoad{m, plugin.Options{Runtime: &rt, Cache: wazero.NewCompilationCache(), InstrumentCache: cache, Gate: gate.New(nil), Logger: logger}}
}

func (c cachedLoad) load(tb testing.TB) (*plugin.Plugin, error) {
	tb.Helper()
	ctx := context.Background()
	p, err := plugin.Load(ctx, c.m, c.o)
	if err == nil {
		tb.Cleanup(func() { p.Close(ctx) })
	}
	return p, err
}

// mustLoad loads wasm with the instrument cache and requires that it
// carries the watchdog's checks.
func mustLoad(t *testing.T, wasm []byte, cache string, logger *slog.Logger) *plugin.Plugin {
	t.Helper()
	p, err := newCachedLoad(t, wasm, cache, logger).load(t)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Interruptible() {
		t.Fatal("the module was loaded without instrument's checks")
	}
	return p
}

// checkEntry requires that cache holds wasm's instrumented copy, as
// instrument makes it, followed by 4 bytes of checksum.
func checkEntry(t *testing.T, cache string, wasm []byte) os.FileInfo {
	t.Helper()
	want, err := wasmbin.Instrument(wasm)
	if err != nil {
		t.Fatal(err)
	}
	path := plugin.InstrumentCacheEntry(cache, wasm)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no cache entry: %v", err)
	}
	if len(got) != len(want)+4 || !bytes.Equal(got[:len(want)], want) {
		t.Fatalf("the cache entry is not instrument's output and a checksum: %d bytes, want %d+4", len(got), len(want))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// The first load instruments the module and keeps the result; the second
// takes it from the cache, and its runaway handler is still stopped by the
// watchdog through the cached module's checks.
func TestInstrumentCacheHit(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "instrumented")
	wasm := abiModule(spinHandler)
	mustLoad(t, wasm, cache, slog.New(slog.DiscardHandler))
	before := checkEntry(t, cache, wasm)
	if before.Mode().Perm() != 0o600 {
		t.Errorf("entry mode %v, want 0600", before.Mode().Perm())
	}
	if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory: %v, %v; want mode 0700", fi, err)
	}

	log, logger := logtest.New(t)
	p := mustLoad(t, wasm, cache, logger)
	if log.Count("instrumented module from the cache") != 1 || log.Count("WARN") != 0 {
		t.Fatalf("want one cache hit and no warning; log:\n%s", strings.Join(log.Lines(), "\n"))
	}
	if after := checkEntry(t, cache, wasm); !os.SameFile(before, after) {
		t.Error("a hit wrote the entry again")
	}
	_, err := p.Instantiate(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ran past limits.handler_timeout = 100ms") {
		t.Fatalf("start handler: got %v, want it stopped by the watchdog", err)
	}
}

// A damaged entry is not compiled (a hit skips CheckCounts): the module is
// instrumented again, with a warning, and the entry written again.
func TestInstrumentCacheDamagedEntry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"not a module", func([]byte) []byte { return []byte("garbage, not a module") }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-10] }},
		{"a flipped bit", func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }},
		{"a wrong checksum", func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			wasm := abiModule(spinHandler)
			mustLoad(t, wasm, cache, slog.New(slog.DiscardHandler))
			path := plugin.InstrumentCacheEntry(cache, wasm)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			log, logger := logtest.New(t)
			mustLoad(t, wasm, cache, logger)
			if log.Count("WARN the cached instrumented module is damaged", path) != 1 || log.Count("from the cache") != 0 {
				t.Fatalf("want one warning of a damaged entry and no hit; log:\n%s", strings.Join(log.Lines(), "\n"))
			}
			checkEntry(t, cache, wasm)
		})
	}
}

// A cache that cannot be written (here a file stands where its directory
// should be) costs a warning and the next load's instrument, not the load.
func TestInstrumentCacheUnwritable(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "instrumented")
	if err := os.WriteFile(cache, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		log, logger := logtest.New(t)
		mustLoad(t, abiModule(spinHandler), cache, logger)
		if log.Count("WARN") != 1 || log.Count("WARN cannot cache the instrumented module", "not a directory") != 1 {
			t.Fatalf("want one warning that the cache cannot be written; log:\n%s", strings.Join(log.Lines(), "\n"))
		}
	}
}

// The cache is keyed by the module's bytes: another module misses, and gets
// an entry of its own.
func TestInstrumentCacheMissesAnotherModule(t *testing.T) {
	cache := t.TempDir()
	a, b := abiModule(spinHandler), abiModule([]byte{0x41, 0x00, 0x0b})
	mustLoad(t, a, cache, slog.New(slog.DiscardHandler))
	log, logger := logtest.New(t)
	mustLoad(t, b, cache, logger)
	if log.Count("from the cache") != 0 {
		t.Fatalf("another module hit the cache; log:\n%s", strings.Join(log.Lines(), "\n"))
	}
	checkEntry(t, cache, a)
	checkEntry(t, cache, b)
	if entries, err := os.ReadDir(cache); err != nil || len(entries) != 2 {
		t.Errorf("cache holds %v (%v), want the two entries", entries, err)
	}
}

// Only what CheckCounts accepts and instrument handles is cached: a module
// with an impossible count is refused on every load, and one instrument
// refuses loads without the checks, every time with the warning.
func TestInstrumentCacheKeepsOnlyInstrumentedModules(t *testing.T) {
	cache := t.TempDir()
	// 14 bytes: a data section of 100 million segments.
	impossible := []byte("\x00asm\x01\x00\x00\x00\x0b\x04\x80\xc2\xd7\x2f")
	refusal := wasmbin.CheckCounts(impossible)
	if refusal == nil {
		t.Fatal("CheckCounts accepts 100 million data segments in 4 bytes")
	}
	for range 2 {
		c := newCachedLoad(t, impossible, cache, slog.New(slog.DiscardHandler))
		want := `plugin "p": ` + c.m.Wasm + " is not a valid WebAssembly module: " + refusal.Error()
		if _, err := c.load(t); err == nil || err.Error() != want {
			t.Fatalf("got %v\nwant %s", err, want)
		}

		log, logger := logtest.New(t)
		p, err := newCachedLoad(t, abiModule(spinHandler, wasmbin.InterruptExport), cache, logger).load(t)
		if err != nil {
			t.Fatal(err)
		}
		if p.Interruptible() || log.Count("WARN module not instrumented for the watchdog") != 1 {
			t.Fatalf("want the module loaded without the checks, with a warning; log:\n%s", strings.Join(log.Lines(), "\n"))
		}
	}
	if entries, err := os.ReadDir(cache); err != nil || len(entries) != 0 {
		t.Errorf("cache holds %v (%v), want nothing", entries, err)
	}
}

// BenchmarkLoadGo measures Load of a standard Go module (about 2.7 MB) on a
// warm start, its native code in wazero's file cache, without and with the
// instrument cache.
func BenchmarkLoadGo(b *testing.B) {
	wasm, err := os.ReadFile(testenv.BuildGo(b, "examples/hello"))
	if err != nil {
		b.Fatal(err)
	}
	compiled := b.TempDir()
	for _, bc := range []struct{ name, cache string }{{"uncached", ""}, {"cached", b.TempDir()}} {
		b.Run(bc.name, func(b *testing.B) {
			c := newCachedLoad(b, wasm, bc.cache, slog.New(slog.DiscardHandler))
			ctx := context.Background()
			load := func() {
				cache, err := wazero.NewCompilationCacheWithDir(compiled)
				if err != nil {
					b.Fatal(err)
				}
				c.o.Cache = cache
				p, err := plugin.Load(ctx, c.m, c.o)
				if err != nil {
					b.Fatal(err)
				}
				p.Close(ctx)
				cache.Close(ctx)
			}
			load() // fills both caches
			for b.Loop() {
				load()
			}
		})
	}
}
