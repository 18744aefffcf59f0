// Command airlock runs sandboxed WebAssembly plugins for device automation.
//
//	airlock run   [--config runtime.toml]     run the host and its plugins
//	airlock check [--config runtime.toml] DIR validate a plugin without running it
//	airlock build [-o OUT] DIR                compile a Go plugin to wasm
package main

import (
	"bytes"
	"context"
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
	"syscall"

	"github.com/tetratelabs/wazero"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/build"
	"github.com/airlockhq/airlock/host/isolate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/host/plugin"
	"github.com/airlockhq/airlock/host/version"
)

const usage = `airlock runs sandboxed WebAssembly plugins for device automation.

Usage:
  airlock run   [--config runtime.toml]          run the host and its plugins
  airlock check [--config runtime.toml] <plugin>  validate a plugin's manifest and module
  airlock build [-o out.wasm] <plugin dir>        compile a Go plugin to wasm
  airlock new   [--lang go|rust|c|as] [--dir DIR] <name>
                                                  scaffold a plugin: manifest, handler, test, README
  airlock dev   [<plugin dir>]                    run one plugin on the simulated device, with reload

Operating a running host (through its admin socket):
  airlock status  [--config runtime.toml] [--json]          plugins, state, queues, errors
  airlock trigger [--config runtime.toml] <plugin> <event>  send a synthetic timer, udev or dbus event

Vendor bundles:
` + bundleUsage + `
Run "airlock <command> --help" for a command's flags, and "airlock version"
(or --version) for this binary's version, commit, Go and wazero.
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
		fmt.Fprint(stdout, usage)
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
	}
	fmt.Fprintf(stderr, "airlock %s: %v\n", args[0], err)
	return 1
}

var errUsage = errors.New("usage")

// newFlags makes a command's flag set. It prints on stderr: the usage after
// a mistake in the arguments goes there, with exit code 2. The usage that
// -h or --help asks for is output instead, and parse prints it on stdout.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: airlock %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
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

// runConfig runs the host on the runtime.toml at config until SIGINT or
// SIGTERM, logging to stderr.
func runConfig(config string, stderr io.Writer) error {
	caps := host.Builtin()
	rt, err := manifest.LoadRuntime(config, host.RuntimeSections(caps))
	if err != nil {
		return err
	}
	logger := newLogger(stderr, rt.Log)
	opts := host.Options{Logger: logger, Capabilities: caps}
	// A module not compiled before is compiled by a child of this binary
	// under limits, so that a hostile one cannot take the host's memory.
	if exe, err := os.Executable(); err == nil {
		opts.Precompile = isolate.Compiler(exe, []string{compileCommand}, isolate.Limits{})
	} else {
		logger.Warn("new modules are compiled in the host's own process", "reason", err.Error())
	}
	h, err := host.New(config, opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return h.Run(ctx)
}

func newLogger(w io.Writer, l manifest.Log) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(l.Level))
	return slog.New(host.LogHandler(w, l.Format, level))
}

// loadRuntimeOrDefault reads the runtime config if it exists; check works
// on a plugin alone too, against the default limits.
func loadRuntimeOrDefault(path string, explicit bool) (*manifest.Runtime, error) {
	caps := host.Builtin()
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

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "check [--config runtime.toml] <plugin dir | plugin.toml>", stderr)
	config := fs.String("config", defaultConfig(), "the runtime config whose limits apply")
	if err := parseN(fs, args, 1, stdout); err != nil {
		return err
	}
	rt, err := loadRuntimeOrDefault(*config, configNamed(fs))
	if err != nil {
		return err
	}
	path := fs.Arg(0)
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "plugin.toml")
	}
	caps := host.Builtin()
	m, err := manifest.LoadManifest(path, rt, host.Schema(caps))
	if err != nil {
		return err
	}
	ctx := context.Background()
	wasm, err := os.ReadFile(m.Wasm)
	if err != nil {
		return fmt.Errorf("manifest ok, but the module cannot be read: %w (build it with: airlock build %s)", err, m.Dir)
	}
	if err := plugin.CheckCounts(wasm); err != nil {
		return fmt.Errorf("%s is not a valid WebAssembly module: %w", m.Wasm, err)
	}
	if err := plugin.CheckFootprint(m, wasm); err != nil {
		return err
	}
	// Compiled as airlock run compiles a new module: by a child under
	// limits, into a cache this process then reads, so that a module that
	// would exhaust the compiler fails here with the same error as there.
	cacheDir, err := os.MkdirTemp("", "airlock-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cacheDir)
	if exe, err := os.Executable(); err == nil {
		if err := isolate.Compiler(exe, []string{compileCommand}, isolate.Limits{})(ctx, cacheDir, wasm, false); err != nil {
			return fmt.Errorf("%s was not compiled: %w", m.Wasm, err)
		}
	}
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		return err
	}
	defer cache.Close(ctx)
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
	defer r.Close(ctx)
	compiled, err := isolate.Compile(ctx, r, wasm)
	if err != nil {
		return fmt.Errorf("%s is not a valid WebAssembly module: %w", m.Wasm, err)
	}
	if _, err := plugin.CheckModule(ctx, compiled, m, caps, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s: ok\n", m.Name, m.Version)
	fmt.Fprintf(stdout, "  module:   %s (%d KiB)\n", m.Wasm, len(wasm)/1024)
	fmt.Fprintf(stdout, "  limits:   memory %s, handler_timeout %s, queue %d (%s)\n", m.Limits.Memory, m.Limits.HandlerTimeout, m.Limits.Queue, m.Limits.Overflow)
	grants := []string{}
	for k := range m.Grants {
		grants = append(grants, k)
	}
	sort.Strings(grants)
	if m.Data {
		grants = append(grants, "storage.data (/data)")
	}
	if len(m.EnvAllow) > 0 {
		grants = append(grants, "env "+strings.Join(m.EnvAllow, ","))
	}
	if len(grants) == 0 {
		grants = append(grants, "none beyond logs, config and clock")
	}
	fmt.Fprintf(stdout, "  grants:   %s\n", strings.Join(grants, "; "))
	var trig []string
	for _, t := range m.Timers {
		if t.Cron != "" {
			trig = append(trig, fmt.Sprintf("timer %s (cron %q)", t.Name, t.Cron))
		} else {
			trig = append(trig, fmt.Sprintf("timer %s (every %s)", t.Name, t.Every))
		}
	}
	for k := range m.Triggers {
		trig = append(trig, k)
	}
	if len(trig) > 0 {
		fmt.Fprintf(stdout, "  triggers: %s\n", strings.Join(trig, "; "))
	}
	return nil
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
		m, err := manifest.LoadManifest(filepath.Join(dir, "plugin.toml"), &def, host.Schema(host.Builtin()))
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
