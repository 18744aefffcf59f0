// Package isolate compiles a module that the host has not compiled before
// in a process of its own, under a memory and a time limit, so that a
// module crafted to make wazero's compiler take gigabytes or minutes costs
// that process, not the host and its other plugins. The child compiles
// into the host's file compilation cache; the host's own compile then
// reads the result from there. host/RATIONALE.md, "Why compile a new module
// in a child process?". Compile, which every compile of guest bytes goes
// through, in the child or not, isolates its caller from a panic in wazero.
package isolate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero"
)

// Limits bound one child's compile.
type Limits struct {
	// Memory caps the child's data (RLIMIT_DATA, which counts what the Go
	// runtime allocates); 0 means DefaultMemory.
	Memory int64
	// Timeout ends the child; 0 means DefaultTimeout.
	Timeout time.Duration
}

// DefaultMemory is 1 GiB, or half the machine's memory if that is less: a
// Go plugin of 2.7 MB needs about 100 MiB to compile. The child also asks
// the kernel to kill it first when memory runs out (oom_score_adj), so even
// below its limit a compile cannot get the host killed instead.
func DefaultMemory() int64 {
	limit := int64(1 << 30)
	if total := memTotal(); total > 0 && total/2 < limit {
		limit = total / 2
	}
	return limit
}

// DefaultTimeout is generous: a Go plugin takes seconds to compile on a
// fast machine and may take minutes on a small board.
const DefaultTimeout = 10 * time.Minute

// Compiler returns a function that compiles a module by running exe with
// args, then the child's own flags, the module on its standard input;
// exe must call Main with what follows args. closeOnContextDone must match
// the host's runtime configuration (wazero's cache key includes it).
func Compiler(exe string, args []string, l Limits) func(ctx context.Context, cacheDir string, wasm []byte, closeOnContextDone bool) error {
	if l.Memory <= 0 {
		l.Memory = DefaultMemory()
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	return func(ctx context.Context, cacheDir string, wasm []byte, closeOnContextDone bool) error {
		ctx, cancel := context.WithTimeout(ctx, l.Timeout)
		defer cancel()
		argv := append(append([]string(nil), args...), "-cache", cacheDir, "-memory", strconv.FormatInt(l.Memory, 10))
		if closeOnContextDone {
			argv = append(argv, "-close-on-context-done")
		}
		cmd := exec.CommandContext(ctx, exe, argv...)
		cmd.Stdin = bytes.NewReader(wasm)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		switch {
		case err == nil:
			return nil
		case ctx.Err() == context.DeadlineExceeded:
			return fmt.Errorf("compiling it took longer than %s, so it was stopped (a module built to stall the compiler? a very large one on a slow device: see host/RATIONALE.md)", l.Timeout)
		case ctx.Err() != nil:
			return ctx.Err()
		}
		out := stderr.String()
		var exit *exec.ExitError
		killed := errors.As(err, &exit) && exit.ProcessState != nil &&
			exit.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
		if strings.Contains(out, "out of memory") || strings.Contains(out, "cannot allocate memory") || killed {
			return fmt.Errorf("compiling it needed more than %s of memory, so it was stopped (a module built to exhaust the compiler?)", size(l.Memory))
		}
		// A panic the child did not recover (a bug) prints every
		// goroutine's stack after its message; the message is what helps.
		if i := strings.Index(out, "\n\ngoroutine "); i >= 0 && strings.HasPrefix(out, "panic: ") {
			out = out[:i]
		}
		if msg := oneLine(out); msg != "" {
			return errors.New(msg)
		}
		return fmt.Errorf("the compiler's process failed: %v", err)
	}
}

// Main is the child: it limits itself, reads a module from stdin and
// compiles it into the cache that args name. The caller prints a compile
// error on stderr, where Compiler reads it.
func Main(args []string, stdin io.Reader) error {
	fs := flag.NewFlagSet("compile", flag.ContinueOnError)
	cacheDir := fs.String("cache", "", "the host's compilation cache directory")
	memory := fs.Int64("memory", 0, "RLIMIT_DATA in bytes")
	closeOnDone := fs.Bool("close-on-context-done", false, "compile as WithCloseOnContextDone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cacheDir == "" {
		return errors.New("-cache is required")
	}
	// The kernel's OOM killer picks this process before any other, and it
	// yields the CPU to the plugins that run.
	os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0)
	syscall.Setpriority(syscall.PRIO_PROCESS, 0, 10)
	if *memory > 0 {
		lim := &syscall.Rlimit{Cur: uint64(*memory), Max: uint64(*memory)}
		if err := syscall.Setrlimit(syscall.RLIMIT_DATA, lim); err != nil {
			return fmt.Errorf("limit memory: %w", err)
		}
	}
	wasm, err := io.ReadAll(stdin)
	if err != nil {
		return err
	}
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(*cacheDir)
	if err != nil {
		return err
	}
	defer cache.Close(ctx)
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(cache).WithCloseOnContextDone(*closeOnDone))
	defer r.Close(ctx)
	if _, err := Compile(ctx, r, wasm); err != nil {
		return fmt.Errorf("not a valid WebAssembly module: %w", err)
	}
	return nil
}

// Compile compiles wasm with r, and makes a panic in wazero an error.
// wazero 1.12 panics on some modules it should refuse (wasmbin.CheckCounts
// refuses the one known); a panic in the host would stop it and every
// plugin, where a refusal stops only the plugin. host/RATIONALE.md, "Why
// recover from a panic in wazero's compile?".
func Compile(ctx context.Context, r wazero.Runtime, wasm []byte) (compiled wazero.CompiledModule, err error) {
	defer func() {
		if v := recover(); v != nil {
			compiled, err = nil, fmt.Errorf("wazero failed on it (%v): a bug in wazero, which refuses the module", v)
		}
	}()
	return r.CompileModule(ctx, wasm)
}

// oneLine is the child's error, which wazero may spread over lines
// ("have ()", "want (i32)"), on one.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

func size(b int64) string {
	if b >= 1<<30 && b%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", b>>30)
	}
	return fmt.Sprintf("%d MiB", b>>20)
}

// memTotal is the machine's memory from /proc/meminfo, or 0.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
