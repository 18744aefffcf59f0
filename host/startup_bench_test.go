package host_test

// Benchmarks of how fast the host starts plugins and what each one costs in
// memory, in every SDK language, beside raw wazero doing the least it can to
// start the same modules. bench/run.sh runs them and writes their figures
// into BENCHMARKS.md (issue 8, items 5 and 6).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"golang.org/x/sys/unix"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/internal/isolate"
	"github.com/airlockhq/airlock/internal/testenv"
)

// helloDir is the hello example of each SDK language: it reads a config
// value and logs a greeting on start, which is when a plugin counts as
// started here.
var helloDir = map[string]string{"go": "examples/hello", "c": "examples/hello-c", "rust": "examples/hello-rust", "as": "examples/hello-as"}

const greeting = "from a sandboxed plugin"

// helloModules returns n distinct copies of lang's hello module: a custom
// section numbers each one, so that each hashes differently and is compiled
// and cached on its own, as n different plugins would be.
func helloModules(tb testing.TB, lang testenv.Lang, n int) [][]byte {
	tb.Helper()
	wasm, err := os.ReadFile(lang.Build(tb, helloDir[lang.Name]))
	if err != nil {
		tb.Fatal(err)
	}
	mods := make([][]byte, n)
	for i := range mods {
		const name = "airlock-bench"
		body := append(append([]byte{byte(len(name))}, name...), strconv.Itoa(i)...) // a custom section: its name, then i
		mods[i] = append(append(append([]byte(nil), wasm...), 0, byte(len(body))), body...)
	}
	return mods
}

// pluginTree writes one plugin per module under dir/plugins and a
// runtime.toml whose state (and so compilation cache) is state.
func pluginTree(tb testing.TB, dir, state string, mods [][]byte) string {
	tb.Helper()
	for i, w := range mods {
		pd := filepath.Join(dir, "plugins", fmt.Sprintf("p%03d", i))
		if err := os.MkdirAll(pd, 0o755); err != nil {
			tb.Fatal(err)
		}
		man := fmt.Sprintf("name = \"p%03d\"\nversion = \"1.0.0\"\nwasm = \"p.wasm\"\n[config]\ngreeting = \"hello\"\n", i)
		if err := os.WriteFile(filepath.Join(pd, "plugin.toml"), []byte(man), 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pd, "p.wasm"), w, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return writeRuntime(tb, dir, state)
}

func writeRuntime(tb testing.TB, dir, state string) string {
	tb.Helper()
	rt := "plugins = [\"plugins\"]\nstate_dir = " + strconv.Quote(state) + "\n[log]\naudit = \"off\"\n[admin]\nsocket = \"off\"\n"
	file := filepath.Join(dir, "runtime.toml")
	if err := os.WriteFile(file, []byte(rt), 0o644); err != nil {
		tb.Fatal(err)
	}
	return file
}

// startHost runs the host of rtFile until n plugins have greeted (or, for
// n = 0, until it runs), and returns what stops it again.
func startHost(ctx context.Context, tb testing.TB, rtFile string, n int) (stop func()) {
	tb.Helper()
	w := &greetWatch{want: int64(n), all: make(chan struct{}), running: make(chan struct{})}
	// As airlock run does: a new module is compiled in a child first.
	h, err := host.New(rtFile, host.Options{Logger: slog.New(w), Precompile: testenv.IsolateCompiler(isolate.Limits{})})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	}
	ready := w.all
	if n == 0 {
		ready = w.running
	}
	select {
	case <-ready:
	case <-w.running:
		// Every module is compiled and started; the greetings follow unless
		// some plugin failed.
		if f := h.Failures(); len(f) > 0 {
			stop()
			tb.Fatalf("plugins failed to load: %v", f)
		}
		select {
		case <-ready:
		case <-time.After(time.Minute):
			stop()
			tb.Fatalf("%d of %d plugins greeted within a minute of the host running", w.n.Load(), n)
		}
	case err := <-done:
		tb.Fatalf("host ended before its plugins started: %v", err)
	case <-time.After(10 * time.Minute):
		stop()
		tb.Fatalf("host did not start %d plugins in 10 minutes", n)
	}
	return stop
}

// greetWatch is a log handler that discards every record but counts the
// plugins' greetings, and says when the host runs.
type greetWatch struct {
	want    int64
	n       atomic.Int64
	all     chan struct{}
	running chan struct{}
	ran     atomic.Bool
}

func (w *greetWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *greetWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, greeting) && w.n.Add(1) == w.want {
		close(w.all)
	}
	if r.Message == "airlock running" && w.ran.CompareAndSwap(false, true) {
		close(w.running)
	}
	return nil
}
func (w *greetWatch) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *greetWatch) WithGroup(string) slog.Handler      { return w }

// warmState is, per language, a state directory whose compilation cache
// holds the first warmed modules, shared by the benchmarks of one run.
var warmState = struct {
	sync.Mutex
	dir    string
	warmed map[string]int
}{warmed: map[string]int{}}

// TestMain is the compiling child when startHost's host starts one, and
// otherwise removes the warm caches, which hold up to a gigabyte of
// compiled Go plugins, once the benchmarks are done.
func TestMain(m *testing.M) {
	testenv.IsolateChild()
	code := m.Run()
	if warmState.dir != "" {
		os.RemoveAll(warmState.dir)
	}
	os.Exit(code)
}

// warm returns a state directory whose cache holds mods (and the raw
// anchor's cache, under wazero/), compiling them if no benchmark has yet.
func warm(tb testing.TB, lang string, mods [][]byte) string {
	tb.Helper()
	warmState.Lock()
	defer warmState.Unlock()
	if warmState.dir == "" {
		d, err := os.MkdirTemp("", "airlock-bench-state-")
		if err != nil {
			tb.Fatal(err)
		}
		warmState.dir = d
	}
	state := filepath.Join(warmState.dir, lang)
	if warmState.warmed[lang] < len(mods) {
		dir := tb.TempDir()
		startHost(context.Background(), tb, pluginTree(tb, dir, state, mods), len(mods))()
		cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(state, "wazero"))
		if err != nil {
			tb.Fatal(err)
		}
		rawStart(context.Background(), tb, cache, mods)
		warmState.warmed[lang] = len(mods)
	}
	return state
}

// rawStart is the anchor: each module compiled in a runtime of its own (as
// the host does), with its imports stubbed, instantiated, initialised and
// sent the start event, one module per core at a time.
func rawStart(ctx context.Context, tb testing.TB, cache wazero.CompilationCache, mods [][]byte) []wazero.Runtime {
	tb.Helper()
	rts := make([]wazero.Runtime, len(mods))
	errs := make([]error, len(mods))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(mods)) {
		wg.Go(func() {
			for i := range work {
				rts[i], errs[i] = rawOne(ctx, cache, mods[i])
			}
		})
	}
	for i := range mods {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return rts
}

func rawOne(ctx context.Context, cache wazero.CompilationCache, wasm []byte) (wazero.Runtime, error) {
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	return r, rawModule(ctx, r, wasm, "", true)
}

// rawModule compiles wasm in r, stubs its imports if stub, instantiates it
// as name, initialises it and sends it the start event.
func rawModule(ctx context.Context, r wazero.Runtime, wasm []byte, name string, stub bool) error {
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return err
	}
	if stub {
		if err := testenv.StubImports(ctx, r, compiled); err != nil {
			return err
		}
	}
	mod, err := r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(name).WithStartFunctions())
	if err != nil {
		return err
	}
	if f := mod.ExportedFunction(abi.ExportInit); f != nil {
		if _, err := f.Call(ctx); err != nil {
			return err
		}
	}
	_, err = mod.ExportedFunction(abi.ExportEvent).Call(ctx, uint64(abi.EventStart), 0)
	return err
}

// BenchmarkColdStart: N plugins of one language from nothing to started
// (each has handled its start event), by the real host and by the raw
// anchor, with the compilation cache warm and with none.
func BenchmarkColdStart(b *testing.B) {
	for _, lang := range testenv.Langs {
		for _, n := range []int{1, 20, 100} {
			for _, cached := range []bool{true, false} {
				if lang.Name == "go" && n == 100 && !cached {
					continue // about 100 × 1.4 s of compiling on two cores; n=20 shows it
				}
				name := fmt.Sprintf("%s/n=%d/cache=%s", lang.Name, n, map[bool]string{true: "warm", false: "none"}[cached])
				b.Run(name+"/airlock", func(b *testing.B) {
					mods := helloModules(b, lang, n)
					dir := b.TempDir()
					state := filepath.Join(dir, "state")
					if cached {
						state = warm(b, lang.Name, mods)
					}
					rtFile := pluginTree(b, dir, state, mods)
					for b.Loop() {
						if !cached {
							b.StopTimer()
							os.RemoveAll(state)
							b.StartTimer()
						}
						stop := startHost(context.Background(), b, rtFile, n)
						b.StopTimer()
						stop()
						b.StartTimer()
					}
				})
				b.Run(name+"/wazero", func(b *testing.B) {
					mods := helloModules(b, lang, n)
					var cache wazero.CompilationCache
					if cached {
						c, err := wazero.NewCompilationCacheWithDir(filepath.Join(warm(b, lang.Name, mods), "wazero"))
						if err != nil {
							b.Fatal(err)
						}
						cache = c
					}
					for b.Loop() {
						c := cache
						if !cached {
							c = wazero.NewCompilationCache()
						}
						rts := rawStart(context.Background(), b, c, mods)
						b.StopTimer()
						for _, r := range rts {
							r.Close(context.Background())
						}
						b.StartTimer()
					}
				})
			}
		}
	}
}

// memoryChild is the environment variable that makes TestMemoryChild
// measure instead of returning at once.
const memoryChild = "AIRLOCK_BENCH_MEMORY"

// footprint is what TestMemoryChild measures in a process of its own.
type footprint struct {
	RSS            int64 // resident set, after a full GC that returns free memory
	Code           int64 // resident anonymous executable mappings: compiled wasm
	Linear         int64 // the plugins' linear memories, their full capacity
	LinearResident int64 // the pages of those that are resident
}

// BenchmarkMemory: the resident memory of a process running N idle plugins
// of one language, per plugin, split into its compiled code, its linear
// memory, and the rest (the host's and wazero's structures), by the real
// host and by two raw anchors: a wazero runtime per module, as the host
// has, and one runtime for all of them, the least wazero needs. Each figure
// comes from a process of its own, measured once every plugin has started,
// after a collection that returns free memory to the system.
func BenchmarkMemory(b *testing.B) {
	impls := []string{"airlock", "wazero", "wazero-shared"}
	base := map[string]footprint{}
	baseOf := func(b *testing.B, impl string) footprint {
		if _, ok := base[impl]; !ok {
			base[impl] = measureChild(b, impl, "", "", 0)
		}
		return base[impl]
	}
	for _, impl := range impls {
		b.Run("none/n=0/"+impl, func(b *testing.B) {
			for b.Loop() {
				delete(base, impl)
				baseOf(b, impl)
			}
			b.ReportMetric(float64(base[impl].RSS), "rss-total-B")
		})
	}
	for _, lang := range testenv.Langs {
		for _, n := range []int{1, 20, 100} {
			for _, impl := range impls {
				b.Run(fmt.Sprintf("%s/n=%d/%s", lang.Name, n, impl), func(b *testing.B) {
					mods := helloModules(b, lang, n)
					state := warm(b, lang.Name, mods)
					dir := b.TempDir()
					pluginTree(b, dir, state, mods)
					zero := baseOf(b, impl)
					var f footprint
					for b.Loop() {
						f = measureChild(b, impl, lang.Name, dir, n)
					}
					per := func(v int64) float64 { return float64(v) / float64(n) }
					rss, code := per(f.RSS-zero.RSS), per(f.Code-zero.Code)
					b.ReportMetric(float64(f.RSS), "rss-total-B")
					b.ReportMetric(rss, "rss-B/plugin")
					b.ReportMetric(code, "code-B/plugin")
					b.ReportMetric(per(f.LinearResident), "linear-resident-B/plugin")
					b.ReportMetric(per(f.Linear), "linear-B/plugin")
					b.ReportMetric(rss-code-per(f.LinearResident), "rest-B/plugin")
				})
			}
		}
	}
}

// measureChild runs TestMemoryChild in a new process of this test binary
// and returns what it measured.
func measureChild(tb testing.TB, impl, lang, dir string, n int) footprint {
	tb.Helper()
	state := ""
	if n > 0 {
		warmState.Lock()
		state = filepath.Join(warmState.dir, lang)
		warmState.Unlock()
	} else {
		dir = tb.TempDir()
		state = filepath.Join(dir, "state")
		pluginTree(tb, dir, state, nil)
		if err := os.Mkdir(filepath.Join(dir, "plugins"), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), memoryChild+"="+strings.Join([]string{impl, strconv.Itoa(n), dir, state}, string(os.PathListSeparator)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("memory child (%s, %s, n=%d): %v\n%s", impl, lang, n, err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if j, ok := strings.CutPrefix(sc.Text(), "footprint "); ok {
			var f footprint
			if err := json.Unmarshal([]byte(j), &f); err != nil {
				tb.Fatal(err)
			}
			return f
		}
	}
	tb.Fatalf("memory child printed no footprint:\n%s", out)
	return footprint{}
}

// TestMemoryChild is BenchmarkMemory's measuring process. Run alone, as
// every test run does, it returns at once: it measures only when
// BenchmarkMemory starts it with AIRLOCK_BENCH_MEMORY set.
func TestMemoryChild(t *testing.T) {
	spec, ok := os.LookupEnv(memoryChild)
	if !ok {
		return
	}
	parts := strings.SplitN(spec, string(os.PathListSeparator), 4)
	if len(parts) != 4 {
		t.Fatalf("%s=%q: want impl:n:dir:state", memoryChild, spec)
	}
	impl, dir, state := parts[0], parts[2], parts[3]
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	mems := &linearMemories{}
	ctx := experimental.WithMemoryAllocator(context.Background(), mems)
	switch impl {
	case "airlock":
		stop := startHost(ctx, t, filepath.Join(dir, "runtime.toml"), n)
		defer stop()
	case "wazero", "wazero-shared":
		var mods [][]byte
		for i := range n {
			w, err := os.ReadFile(filepath.Join(dir, "plugins", fmt.Sprintf("p%03d", i), "p.wasm"))
			if err != nil {
				t.Fatal(err)
			}
			mods = append(mods, w)
		}
		cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(state, "wazero"))
		if err != nil {
			t.Fatal(err)
		}
		if impl == "wazero" {
			rts := rawStart(ctx, t, cache, mods)
			defer runtime.KeepAlive(rts)
			break
		}
		// One runtime for every module: WASI and the stubs once, not once
		// per module.
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
		defer runtime.KeepAlive(r)
		wasi_snapshot_preview1.MustInstantiate(ctx, r)
		for i, w := range mods {
			if err := rawModule(ctx, r, w, strconv.Itoa(i), i == 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(100 * time.Millisecond) // idle: the plugins wait for events
	runtime.GC()
	debug.FreeOSMemory()
	f := footprint{}
	f.RSS, f.Code = residentMemory(t)
	f.Linear, f.LinearResident = mems.resident(t)
	j, _ := json.Marshal(f)
	fmt.Printf("footprint %s\n", j)
}

// residentMemory sums /proc/self/smaps: all resident memory, and that of
// anonymous executable mappings, where wazero puts compiled code.
func residentMemory(t *testing.T) (rss, code int64) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	exec := false
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "-") && len(fields) >= 5 {
			// A mapping's header: range, perms, offset, device, inode[, path].
			exec = strings.Contains(fields[1], "x") && fields[4] == "0" && len(fields) == 5
			continue
		}
		if fields[0] == "Rss:" && len(fields) == 3 {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			rss += kb << 10
			if exec {
				code += kb << 10
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rss, code
}

// linearMemories is a wazero memory allocator that allocates as wazero's
// own does (a Go slice, grown by append) but keeps every memory, so that
// the child can ask the kernel which of their pages are resident.
type linearMemories struct {
	mu   sync.Mutex
	mems []*linearMemory
}

type linearMemory struct{ buf []byte }

func (a *linearMemories) Allocate(capacity, _ uint64) experimental.LinearMemory {
	m := &linearMemory{buf: make([]byte, 0, capacity)}
	a.mu.Lock()
	a.mems = append(a.mems, m)
	a.mu.Unlock()
	return m
}

func (m *linearMemory) Reallocate(size uint64) []byte {
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
	} else {
		m.buf = append(m.buf, make([]byte, size-uint64(len(m.buf)))...)
	}
	return m.buf
}

func (m *linearMemory) Free() { m.buf = nil }

// resident returns the memories' total capacity and how much of it is
// resident (mincore(2)).
func (a *linearMemories) resident(t *testing.T) (total, resident int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	page := os.Getpagesize()
	for _, m := range a.mems {
		if cap(m.buf) == 0 {
			continue
		}
		b := m.buf[:cap(m.buf)]
		total += int64(len(b))
		// Go allocates a slice this large on whole pages of its own.
		vec := make([]byte, (len(b)+page-1)/page)
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			t.Fatalf("mincore: %v", errno)
		}
		for _, v := range vec {
			if v&1 != 0 {
				resident += int64(page)
			}
		}
	}
	return total, resident
}
