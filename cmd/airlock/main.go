// Command airlock runs sandboxed WebAssembly plugins for device automation.
//
//	airlock run   [--config runtime.toml]     run the host and its plugins
//	airlock check [--config runtime.toml] DIR validate a plugin without running it
//	airlock build [-o OUT] DIR                compile a Go plugin to wasm
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/build"
	"github.com/airlockhq/airlock/internal/isolate"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/version"
)

const usage = `airlock runs sandboxed WebAssembly plugins for device automation.

Usage:
  airlock run   [--config runtime.toml]          run the host and its plugins
  airlock check [--config runtime.toml] <plugin>  validate a plugin's manifest and module
  airlock build [-o out.wasm] <plugin dir>        compile a Go plugin to wasm
  airlock new   [--lang go|rust|c|as] [--dir DIR] <name>
                                                  scaffold a plugin: manifest, handler, test, README
  airlock dev   [<plugin dir>]                    run one plugin on the simulated device, with reload
  airlock test  [--timeout D] [<plugin dir>] [<scenario.toml>...]
                                                  play scenario files against a plugin

Operating a running host (through its admin socket):
  airlock status  [--config runtime.toml] [--json]          plugins, state, queues, errors
  airlock trigger [--config runtime.toml] <plugin> <event>  send a synthetic event (a timer's tick, ...)

Vendor bundles:
` + bundleUsage + `
Run "airlock help <command>" (or airlock <command> --help) for a command's
flags; flags may come before or after the arguments. "airlock completion
bash" prints a bash completion script, and "airlock version" (or
--version) this binary's version, commit, Go and wazero.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// compileCommand runs isolate.Main: airlock run starts it to compile a
// module it has not compiled before.
const compileCommand = "__compile"

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "check":
		err = cmdCheck(args[1:], stdout, stderr)
	case "build":
		err = cmdBuild(args[1:], stdout, stderr)
	case "pack", "inspect", "keygen", "sign", "push", "pull", "login", "logout":
		err = bundleCommand(args[0])(args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(args[1:], stdout, stderr)
	case "trigger":
		err = cmdTrigger(args[1:], stdout, stderr)
	case "new":
		err = cmdNew(args[1:], stdout, stderr)
	case "dev":
		err = cmdDev(args[1:], stdout, stderr)
	case "test":
		err = cmdTest(args[1:], stdout, stderr)
	case compileCommand:
		// Not for people: the child that compiles a new module (isolate).
		if err := isolate.Main(args[1:], os.Stdin); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, version.Get())
		return 0
	case "help", "-h", "--help":
		if len(args) == 2 && args[0] == "help" {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	case "completion":
		err = cmdCompletion(args[1:], stdout, stderr)
	case "__complete":
		// Not for people: the words the completion script offers.
		complete(args[1:], stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "airlock: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errReported):
		return 1
	}
	fmt.Fprintf(stderr, "airlock %s: %v\n", args[0], err)
	return 1
}

var errUsage = errors.New("usage")

// errReported ends a command with exit code 1 after it has said why
// itself (as check --json does, on stdout).
var errReported = errors.New("reported")

// newFlags makes a command's flag set. It prints on stderr: the usage after
// a mistake in the arguments goes there, with exit code 2. The usage that
// -h or --help asks for is output instead, and parse prints it on stdout.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: airlock %s\n\nFlags:\n", synopsis)
		printFlags(fs)
	}
	return fs
}

// parseN parses args and requires exactly n positional arguments, printing
// the usage otherwise.
func parseN(fs *flag.FlagSet, args []string, n int, stdout io.Writer) error {
	_, err := parseArgs(fs, args, stdout, n, n)
	return err
}

// parse parses args, whose flags may stand before, between or after the
// positional arguments (everything after "--" is positional); afterwards
// fs.Args() holds the positional arguments in order. The flag package
// prints what it has to say on the flag set's output, stderr; when that is
// the usage asked for with -h, parse moves it to stdout.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	stderr := fs.Output()
	var printed bytes.Buffer
	fs.SetOutput(&printed)
	defer fs.SetOutput(stderr)
	var pos, tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	for rest := args; ; {
		err := fs.Parse(rest)
		if errors.Is(err, flag.ErrHelp) {
			stdout.Write(printed.Bytes())
			return err
		}
		if err != nil {
			stderr.Write(printed.Bytes())
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	// Parse once more to leave the positional arguments in fs.Args().
	return fs.Parse(append(append([]string{"--"}, pos...), tail...))
}

// parseArgs parses args and requires between min and max positional
// arguments, printing the usage otherwise; it returns them.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer, min, max int) ([]string, error) {
	if err := parse(fs, args, stdout); err != nil {
		return nil, err
	}
	if fs.NArg() < min || fs.NArg() > max {
		fs.Usage()
		return nil, errUsage
	}
	return fs.Args(), nil
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "run [--config runtime.toml]", stderr)
	config := fs.String("config", defaultConfig(), "the runtime config")
	if err := parseN(fs, args, 0, stdout); err != nil {
		return err
	}
	return runConfig(*config, stderr)
}

// runConfig runs the host on the runtime.toml at config until SIGTERM,
// SIGINT or SIGQUIT (SIGHUP re-reads it; signals.go), logging to stderr.
func runConfig(config string, stderr io.Writer) error {
	// From here every terminating signal drains the plugins, and SIGHUP
	// re-reads runtime.toml.
	sigs := notifySignals()
	defer signal.Stop(sigs)
	caps := builtin.Capabilities()
	rt, err := manifest.LoadRuntime(config, host.RuntimeSections(caps))
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	logger := newLogger(stderr, rt.Log, level)
	opts := host.Options{Logger: logger, LogLevel: level, Capabilities: caps}
	// A module not compiled before is compiled by a child of this binary
	// under limits, so that a hostile one cannot take the host's memory.
	if exe, err := os.Executable(); err == nil {
		opts.Precompile = isolate.Compiler(exe, []string{compileCommand}, isolate.Limits{})
	} else {
		logger.Warn("new modules are compiled in the host's own process", "reason", err.Error())
	}
	h, err := host.New(config, builtin.Options(opts))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go handleSignals(sigs, h, logger, cancel)
	return h.Run(ctx)
}

// newLogger makes the host's logger at l's level; level, if not nil, holds
// it, so that a SIGHUP can change it.
func newLogger(w io.Writer, l manifest.Log, level *slog.LevelVar) *slog.Logger {
	if level == nil {
		level = new(slog.LevelVar)
	}
	level.UnmarshalText([]byte(l.Level))
	return slog.New(host.LogHandler(w, l.Format, level))
}

// loadRuntimeOrDefault reads the runtime config if it exists; check works
// on a plugin alone too, against the default limits.
func loadRuntimeOrDefault(path string, explicit bool) (*manifest.Runtime, error) {
	caps := builtin.Capabilities()
	rt, err := manifest.LoadRuntime(path, host.RuntimeSections(caps))
	if err == nil {
		return rt, nil
	}
	if _, statErr := os.Stat(path); explicit || statErr == nil {
		return nil, err
	}
	def := manifest.DefaultRuntime()
	def.File = "(default runtime)"
	return &def, nil
}

// limits are a plugin's limits as plugin.toml spells them.
type limits struct {
	Memory         string `json:"memory"`
	HandlerTimeout string `json:"handler_timeout"`
	Queue          int    `json:"queue"`
	Overflow       string `json:"overflow"`
}

// checkReport is what airlock check --json prints.
type checkReport struct {
	OK       bool     `json:"ok"`
	Error    string   `json:"error,omitempty"`
	Name     string   `json:"name,omitempty"`
	Version  string   `json:"version,omitempty"`
	Module   string   `json:"module,omitempty"`
	Size     int      `json:"size,omitempty"` // bytes
	Limits   *limits  `json:"limits,omitempty"`
	Grants   []string `json:"grants,omitempty"`
	Triggers []string `json:"triggers,omitempty"`
}

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "check [--config runtime.toml] [--json] <plugin dir | plugin.toml>", stderr)
	config := fs.String("config", defaultConfig(), "the runtime config whose limits apply")
	asJSON := fs.Bool("json", false, "print the verdict as JSON on stdout, failures too")
	if err := parseN(fs, args, 1, stdout); err != nil {
		return err
	}
	rep, err := check(*config, configNamed(fs), fs.Arg(0), stderr)
	if *asJSON {
		if err != nil {
			rep = checkReport{Error: err.Error()}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		if err != nil {
			return errReported
		}
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s: ok\n", rep.Name, rep.Version)
	fmt.Fprintf(stdout, "  module:   %s (%d KiB)\n", rep.Module, rep.Size/1024)
	l := rep.Limits
	fmt.Fprintf(stdout, "  limits:   memory %s, handler_timeout %s, queue %d (%s)\n", l.Memory, l.HandlerTimeout, l.Queue, l.Overflow)
	grants := strings.Join(rep.Grants, "; ")
	if grants == "" {
		grants = "none beyond logs, config and clock"
	}
	fmt.Fprintf(stdout, "  grants:   %s\n", grants)
	if len(rep.Triggers) > 0 {
		fmt.Fprintf(stdout, "  triggers: %s\n", strings.Join(rep.Triggers, "; "))
	}
	return nil
}

// bigModule is the size from which check says that it is compiling: a Go
// module (3 MiB) takes seconds on a small machine.
const bigModule = 1 << 20

// check validates the plugin at path as airlock run would load it.
func check(config string, explicit bool, path string, stderr io.Writer) (checkReport, error) {
	var rep checkReport
	rt, err := loadRuntimeOrDefault(config, explicit)
	if err != nil {
		return rep, err
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "plugin.toml")
	}
	caps := builtin.Capabilities()
	m, err := manifest.LoadManifest(path, rt, host.Schema(caps))
	if err != nil {
		return rep, err
	}
	ctx := context.Background()
	wasm, err := os.ReadFile(m.Wasm)
	if err != nil {
		return rep, fmt.Errorf("manifest ok, but the module cannot be read: %w (build it with: %s)", err, buildAdvice(m.Dir))
	}
	size := len(wasm)
	// Prepared as airlock run prepares a module it has not compiled before
	// (plugin.Prepare): checked, instrumented for the watchdog (or not,
	// with a warning, as run says it), compiled by a child under limits
	// into a cache this process then reads, so that a module that would
	// exhaust the compiler fails here with the same error as there, and its
	// imports checked against the grants.
	cacheDir, err := os.MkdirTemp("", "airlock-check-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(cacheDir)
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		return rep, err
	}
	defer cache.Close(ctx)
	exe, exeErr := os.Executable()
	opts := plugin.Options{Runtime: rt, Cache: cache, Capabilities: caps, Logger: newLogger(stderr, manifest.Log{Level: "warn"}, nil),
		Precompile: func(ctx context.Context, wasm []byte, closeOnContextDone bool) error {
			if size >= bigModule {
				fmt.Fprintf(stderr, "compiling %s (%d KiB) as airlock run would; a module this size takes a while...\n", m.Wasm, size/1024)
			}
			if exeErr != nil {
				return nil // compiled in this process, as run would
			}
			return isolate.Compiler(exe, []string{compileCommand}, isolate.Limits{})(ctx, cacheDir, wasm, closeOnContextDone)
		}}
	// No gate: refusals are not audited here, nothing runs.
	pre, err := plugin.Prepare(ctx, m, wasm, opts)
	if err != nil {
		return rep, err
	}
	pre.Runtime.Close(ctx)
	rep = checkReport{OK: true, Name: m.Name, Version: m.Version, Module: m.Wasm, Size: size, Limits: &limits{
		m.Limits.Memory.String(), m.Limits.HandlerTimeout.String(), m.Limits.Queue, m.Limits.Overflow}}
	for k := range m.Grants {
		rep.Grants = append(rep.Grants, k)
	}
	sort.Strings(rep.Grants)
	if m.Data {
		rep.Grants = append(rep.Grants, "storage.data (/data)")
	}
	if len(m.EnvAllow) > 0 {
		rep.Grants = append(rep.Grants, "env "+strings.Join(m.EnvAllow, ","))
	}
	for _, t := range m.Timers {
		if t.Cron != "" {
			rep.Triggers = append(rep.Triggers, fmt.Sprintf("timer %s (cron %q)", t.Name, t.Cron))
		} else {
			rep.Triggers = append(rep.Triggers, fmt.Sprintf("timer %s (every %s)", t.Name, t.Every))
		}
	}
	for k := range m.Triggers {
		rep.Triggers = append(rep.Triggers, k)
	}
	return rep, nil
}

// buildAdvice says how to build the plugin in dir, in its language.
func buildAdvice(dir string) string {
	has := func(f string) bool { _, err := os.Stat(filepath.Join(dir, f)); return err == nil }
	cs, _ := filepath.Glob(filepath.Join(dir, "*.c"))
	switch {
	case build.HasGoSource(dir):
		return "airlock build " + dir
	case has("build.sh"):
		script := filepath.Join(dir, "build.sh")
		if !filepath.IsAbs(script) && !strings.HasPrefix(script, ".") {
			script = "./" + script
		}
		return script
	case has("Makefile"):
		return "make -C " + dir
	case has("Cargo.toml"):
		return "cargo build --release --target wasm32-wasip1 in " + dir + ", then copy the .wasm from target/ (see the Rust SDK's README)"
	case has("package.json"):
		return "npm run build in " + dir
	case len(cs) > 0:
		return "clang --target=wasm32-wasi -mexec-model=reactor -Os -o <name>.wasm *.c in " + dir + " (see the C SDK's README)"
	}
	return "the SDK of the plugin's language; airlock build " + dir + " for Go"
}

func cmdBuild(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("build", "build [-o out.wasm] <plugin dir>", stderr)
	out := fs.String("o", "", "output file (default: the wasm named in plugin.toml)")
	if err := parseN(fs, args, 1, stdout); err != nil {
		return err
	}
	dir := fs.Arg(0)
	if !build.HasGoSource(dir) {
		return fmt.Errorf("%s holds no Go source; airlock build compiles Go plugins (see sdk/ for other languages)", dir)
	}
	target := *out
	if target == "" {
		def := manifest.DefaultRuntime()
		m, err := manifest.LoadManifest(filepath.Join(dir, "plugin.toml"), &def, host.Schema(builtin.Capabilities()))
		if err != nil {
			return err
		}
		target = m.Wasm
	}
	fmt.Fprintf(stdout, "building %s -> %s (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath)\n", dir, target)
	if err := build.Go(context.Background(), dir, target); err != nil {
		return err
	}
	st, _ := os.Stat(target)
	fmt.Fprintf(stdout, "built %s (%d KiB)\n", target, st.Size()/1024)
	return nil
}
