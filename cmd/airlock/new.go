package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"text/template"
)

// newLangs are the languages `airlock new` scaffolds, each with the SDK in
// sdk/<dir>.
var newLangs = map[string]string{"go": "go", "rust": "rust", "c": "c", "as": "assemblyscript"}

var pluginName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

const newSynopsis = `new [--lang go|rust|c|as] [--dir DIR] <name>

Scaffolds a plugin in DIR (default ./<name>): a least-privilege plugin.toml
(logs, config and one timer; every capability section is there, commented
out), a handler for start and the timer, a test, a build script for Rust, C
and AssemblyScript, and a README. It builds and passes its test at once.`

type scaffold struct {
	Name, Lang, Crate string
	Root              string // the airlock source tree (SDKs)
	Dir               string
	SDKRel            string // Root relative to Dir, for C includes and AS imports
	InModule          bool   // Dir lies inside the airlock Go module
}

func cmdNew(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("new", newSynopsis, stderr)
	lang := fs.String("lang", "go", "the plugin's language: go, rust, c or as (AssemblyScript)")
	dir := fs.String("dir", "", "where to create it (default ./<name>); it must not exist or be empty")
	// Flags may come before or after the name.
	var pos []string
	for rest := args; ; {
		if err := parse(fs, rest, stdout); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	s := scaffold{Name: pos[0], Lang: *lang, Dir: *dir}
	if !pluginName.MatchString(s.Name) {
		return fmt.Errorf("bad plugin name %q: use lower-case letters, digits and '-', starting with a letter", s.Name)
	}
	if _, ok := newLangs[s.Lang]; !ok {
		return fmt.Errorf("unknown language %q: use go, rust, c or as", s.Lang)
	}
	if s.Dir == "" {
		s.Dir = s.Name
	}
	abs, err := filepath.Abs(s.Dir)
	if err != nil {
		return err
	}
	s.Dir = abs
	if entries, err := os.ReadDir(s.Dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s exists and is not empty; pick another --dir", s.Dir)
	}
	if s.Root, err = sourceRoot(s.Dir); err != nil {
		return err
	}
	s.InModule = within(s.Root, s.Dir)
	if s.SDKRel, err = filepath.Rel(s.Dir, s.Root); err != nil {
		s.SDKRel = s.Root
	}
	s.Crate = strings.ReplaceAll(s.Name, "-", "_")
	files := scaffoldFiles(s)
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(s.Dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(f.path, ".sh") {
			mode = 0o755
		}
		var b bytes.Buffer
		if err := template.Must(template.New(f.path).Delims("{{", "}}").Parse(f.text)).Execute(&b, s); err != nil {
			return err
		}
		if err := os.WriteFile(p, b.Bytes(), mode); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  wrote %s\n", filepath.Join(s.Dir, f.path))
	}
	if s.Lang == "go" && !s.InModule {
		// The plugin is its own module, using this airlock tree's SDK and
		// test harness; tidy fills go.sum from the module cache.
		fmt.Fprintf(stdout, "  go mod tidy (go.sum for the SDK and plugintest)\n")
		cmd := exec.Command("go", "mod", "tidy")
		cmd.Dir = s.Dir
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go mod tidy in %s: %v\n%s(fix it, then run go mod tidy there yourself)", s.Dir, err, b)
		}
	}
	rel := s.Dir
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, s.Dir); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
		}
	}
	fmt.Fprintf(stdout, "\ncreated plugin %q (%s) in %s. Next:\n  cd %s\n", s.Name, s.Lang, rel, rel)
	switch s.Lang {
	case "go":
		fmt.Fprintf(stdout, "  go test ./...              # builds it and runs it on the simulated device\n  airlock build . && airlock check .\n")
	default:
		fmt.Fprintf(stdout, "  ./build.sh                 # builds %s.wasm and checks it\n  ./test.sh                  # and runs it on the simulated device\n", s.Name)
	}
	return nil
}

// sourceRoot finds the airlock source tree whose SDKs the plugin uses: the
// module around dir or the working directory, $AIRLOCK_ROOT, or the tree
// this binary was built from.
func sourceRoot(dir string) (string, error) {
	var tries []string
	if r := os.Getenv("AIRLOCK_ROOT"); r != "" {
		tries = append(tries, r)
	}
	for _, start := range []string{dir, mustWd()} {
		for d := start; ; d = filepath.Dir(d) {
			tries = append(tries, d)
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		tries = append(tries, filepath.Join(filepath.Dir(file), "..", ".."))
	}
	for _, d := range tries {
		if isAirlockRoot(d) {
			return filepath.Clean(d), nil
		}
	}
	return "", errors.New("cannot find the airlock source tree (its SDKs): run airlock new inside an airlock checkout, or set AIRLOCK_ROOT to one")
}

func mustWd() string {
	wd, _ := os.Getwd()
	return wd
}

func isAirlockRoot(d string) bool {
	f, err := os.Open(filepath.Join(d, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "module github.com/airlockhq/airlock" {
			_, err := os.Stat(filepath.Join(d, "sdk", "go"))
			return err == nil
		}
	}
	return false
}

// within reports whether dir is root or below it, and not inside another
// module nested in root.
func within(root, dir string) bool {
	r, err := filepath.Rel(root, dir)
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return false
	}
	for d := filepath.Dir(dir); d != root && len(d) > len(root); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return false
		}
	}
	return true
}

type scaffoldFile struct{ path, text string }

func scaffoldFiles(s scaffold) []scaffoldFile {
	files := []scaffoldFile{{"plugin.toml", manifestTmpl}, {"README.md", readmeTmpl}}
	switch s.Lang {
	case "go":
		files = append(files, scaffoldFile{"main.go", goMainTmpl}, scaffoldFile{"main_test.go", goTestTmpl})
		if !s.InModule {
			files = append(files, scaffoldFile{"go.mod", goModTmpl})
		}
	case "rust":
		files = append(files, scaffoldFile{"Cargo.toml", cargoTmpl}, scaffoldFile{"src/lib.rs", rustTmpl},
			scaffoldFile{".cargo/config.toml", cargoConfigTmpl}, scaffoldFile{".gitignore", "target/\n*.wasm\n"},
			scaffoldFile{"build.sh", rustBuildTmpl}, scaffoldFile{"test.sh", testShTmpl})
	case "c":
		files = append(files, scaffoldFile{"main.c", cTmpl}, scaffoldFile{"build.sh", cBuildTmpl}, scaffoldFile{"test.sh", testShTmpl})
	case "as":
		files = append(files, scaffoldFile{"assembly/index.ts", asTmpl}, scaffoldFile{"build.sh", asBuildTmpl}, scaffoldFile{"test.sh", testShTmpl})
	}
	return files
}

const manifestTmpl = `# {{.Name}}: made by airlock new. It may log, read its [config] and the
# clock, and nothing else. To ask for more, uncomment a section below: each
# grant is checked when the plugin loads and every use is audited.
name = "{{.Name}}"
version = "0.1.0"
description = "Says hello at start and counts the ticks of a timer."

[config]
greeting = "hello"

[[trigger.timer]]
name = "tick"
every = "1m"

# [limits]                        # defaults come from runtime.toml
# memory = "16MiB"
# handler_timeout = "2s"
# queue = 64

# [env]                           # environment variables; secrets never pass
# allow = ["BALENA_DEVICE_TYPE", "BALENA_DEVICE_UUID"]

# [storage]                       # a private persistent directory at /data
# data = true

# [supervisor]                    # the device supervisor's API (the host holds the key)
# allow = ["device.read", "reboot"]

# [[dbus.call]]                   # one D-Bus method, argument by argument
# destination = "org.freedesktop.systemd1"
# path = "/org/freedesktop/systemd1"
# interface = "org.freedesktop.systemd1.Manager"
# member = "StopUnit"
# args = ["bluetooth.service", "*"]

# [[dbus.property]]               # read (or set) one property
# destination = "org.freedesktop.timedate1"
# path = "/org/freedesktop/timedate1"
# interface = "org.freedesktop.timedate1"
# name = "NTPSynchronized"
# access = "get"

# [[trigger.dbus]]                # wake on a D-Bus signal
# name = "timedate"
# sender = "org.freedesktop.timedate1"
# path = "/org/freedesktop/timedate1"
# interface = "org.freedesktop.DBus.Properties"
# member = "PropertiesChanged"

# [[trigger.udev]]                # wake on a device event
# subsystem = "block"
# action = ["add", "remove"]

# [[mount]]                       # mount a device under /media
# source = ["label:MEDIA*"]
# fstype = ["vfat", "exfat"]
# target = "/media"
`

const readmeTmpl = `# {{.Name}}

A plugin for [airlock](https://github.com/airlockhq/airlock), in {{if eq .Lang "go"}}Go{{else if eq .Lang "rust"}}Rust{{else if eq .Lang "c"}}C{{else}}AssemblyScript{{end}}.
It logs its greeting at start and counts the ticks of its ` + "`tick`" + ` timer.

` + "`plugin.toml`" + ` grants nothing beyond logs, config and the clock. Every
capability section is there, commented out: uncomment what the plugin
needs, and only that. ` + "`airlock check .`" + ` shows what it is granted.
{{if eq .Lang "go"}}
    go test ./...                # builds the plugin and runs it in a real host on the simulated device
    airlock build . && airlock check .

The test (` + "`main_test.go`" + `) uses ` + "`github.com/airlockhq/airlock/host/plugintest`" + `:
it loads the plugin in a host, fires its timer and waits for its log lines.
{{else}}
    ./build.sh                   # builds {{.Name}}.wasm with the SDK in {{.Root}}/sdk, then airlock check
    ./test.sh                    # runs it on the simulated device and waits for its first tick
{{end}}
Run it with the rest of your plugins by adding this directory to
` + "`plugins`" + ` in runtime.toml; with ` + "`reload = true`" + ` a running host picks up
each rebuild.
`

const goModTmpl = `module {{.Name}}

go 1.24

require github.com/airlockhq/airlock v0.0.0

// The SDK and the test harness from this airlock tree.
replace github.com/airlockhq/airlock => {{.Root}}
`

const goMainTmpl = `// Command {{.Name}} logs its greeting at start and counts the ticks of its
// timer.
package main

import airlock "github.com/airlockhq/airlock/sdk/go"

// ticks lives as long as the instance: a restart or a reload starts again
// from zero. Keep state that must last in /data ([storage] data = true).
var ticks int

func init() {
	airlock.OnStart(func() error {
		greeting, _ := airlock.Config("greeting")
		airlock.Info(greeting + " from {{.Name}}")
		return nil
	})
	airlock.OnTimer(func(t airlock.Timer) error {
		ticks++
		airlock.Info("tick", "timer", t.Name, "count", ticks)
		return nil
	})
}

func main() {}
`

const goTestTmpl = `package main

import (
	"testing"

	"github.com/airlockhq/airlock/host/plugintest"
)

// The plugin, built from this directory, runs in a real airlock host on the
// simulated device.
func TestGreetsAndTicks(t *testing.T) {
	h := plugintest.New(t, ".")
	h.Logs().Wait(1, "hello from {{.Name}}")
	// A tick replaces one of the same timer still queued, so wait for
	// each before the next.
	h.Timer("tick")
	h.Logs().Wait(1, "tick timer=tick count=1")
	h.Timer("tick")
	h.Logs().Wait(1, "tick timer=tick count=2")
}
`

const cargoTmpl = `[package]
name = "{{.Name}}"
version = "0.1.0"
edition = "2021"
publish = false

# A cdylib: the host calls its exports.
[lib]
crate-type = ["cdylib"]
path = "src/lib.rs"

[dependencies]
airlock = { path = "{{.Root}}/sdk/rust" }

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = true
`

const cargoConfigTmpl = `# A 64 KiB stack instead of rustc's default 1 MiB: a plugin's linear memory
# (and so its memory per instance) is mostly its stack otherwise.
[target.wasm32-wasi]
rustflags = ["-C", "link-arg=-zstack-size=65536"]

[target.wasm32-wasip1]
rustflags = ["-C", "link-arg=-zstack-size=65536"]
`

const rustTmpl = `//! {{.Name}} logs its greeting at start and counts the ticks of its timer.

use std::cell::Cell;

thread_local! {
    // Lives as long as the instance; keep lasting state in /data.
    static TICKS: Cell<u64> = Cell::new(0);
}

fn init() {
    airlock::on_start(|| {
        let greeting = airlock::config("greeting").unwrap_or_else(|| "hello".to_string());
        airlock::info(&format!("{} from {{.Name}}", greeting));
        Ok(())
    });
    airlock::on_timer(|t| {
        let n = TICKS.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        airlock::info(&format!("tick timer={} count={}", t.name, n));
        Ok(())
    });
}

airlock::plugin!(init);
`

const cTmpl = `/* {{.Name}} logs its greeting at start and counts the ticks of its timer. */
#define AIRLOCK_IMPLEMENTATION
#include "airlock.h"

/* Lives as long as the instance; keep lasting state in /data. */
static long ticks;

static int on_start(void) {
	airlock_result greeting = airlock_config("greeting");
	airlock_infof("%s from {{.Name}}", greeting.err == AIRLOCK_OK ? greeting.data : "hello");
	airlock_result_free(&greeting);
	return 0;
}

static int on_timer(const airlock_timer *t) {
	ticks++;
	airlock_infof("tick timer=%s count=%ld", t->name, ticks);
	return 0;
}

AIRLOCK_INIT {
	airlock_on_start(on_start);
	airlock_on_timer(on_timer);
}
`

const asTmpl = `// {{.Name}} logs its greeting at start and counts the ticks of its timer.
import * as airlock from "../{{.SDKRel}}/sdk/assemblyscript/assembly/index";
export { airlock_abi_v1, airlock_on_event } from "../{{.SDKRel}}/sdk/assemblyscript/assembly/index";

// Lives as long as the instance; keep lasting state in /data.
let ticks = 0;

airlock.onStart((): string | null => {
  airlock.info(airlock.configString("greeting", "hello") + " from {{.Name}}");
  return null;
});

airlock.onTimer((t: airlock.Timer): string | null => {
  ticks++;
  airlock.info("tick timer=" + t.name + " count=" + ticks.toString());
  return null;
});
`

// The build scripts end with airlock check when airlock is on PATH.
const checkTail = `
if command -v airlock >/dev/null 2>&1; then airlock check .; else echo "built {{.Name}}.wasm (airlock is not on PATH: skipping airlock check)"; fi
`

const rustBuildTmpl = `#!/bin/sh
# Builds {{.Name}}.wasm with the airlock Rust SDK in {{.Root}}/sdk/rust.
# Needs rustc with the wasm32-wasi standard library (Debian: apt-get install
# rustc cargo libstd-rust-dev-wasm32); AIRLOCK_RUSTC picks another rustc.
set -eu
cd "$(dirname "$0")"
rustc="${AIRLOCK_RUSTC:-}"
if [ -z "$rustc" ]; then
	if [ -x /usr/bin/rustc ]; then rustc=/usr/bin/rustc; else rustc=$(command -v rustc); fi
fi
sysroot=$("$rustc" --print sysroot)
target=wasm32-wasi
[ -d "$sysroot/lib/rustlib/$target/lib" ] || target=wasm32-wasip1
# The cargo beside that rustc: a newer cargo may ask an older rustc what it
# cannot answer.
cargo="$(dirname "$rustc")/cargo"
[ -x "$cargo" ] || cargo=cargo
echo "cargo build --offline --release --target $target"
RUSTC="$rustc" "$cargo" build --offline --release --target "$target"
cp "target/$target/release/{{.Crate}}.wasm" {{.Name}}.wasm
` + checkTail

const cBuildTmpl = `#!/bin/sh
# Builds {{.Name}}.wasm, a WASI reactor, with clang and the airlock C SDK's
# one header in {{.Root}}/sdk/c. Needs (Debian) apt-get install clang lld
# wasi-libc libclang-rt-dev-wasm32.
set -eu
cd "$(dirname "$0")"
set -x
clang --target=wasm32-wasi -mexec-model=reactor -Os -Wall -Wl,--strip-all \
	-I "{{.Root}}/sdk/c" -o {{.Name}}.wasm main.c
set +x
` + checkTail

const asBuildTmpl = `#!/bin/sh
# Builds {{.Name}}.wasm with the AssemblyScript compiler pinned by the
# airlock SDK in {{.Root}}/sdk/assemblyscript (run npm ci there once).
set -eu
cd "$(dirname "$0")"
here=$(pwd)
sdk="{{.Root}}/sdk/assemblyscript"
[ -x "$sdk/node_modules/.bin/asc" ] || (cd "$sdk" && npm ci --no-audit --no-fund)
set -x
(cd "$sdk" && node node_modules/.bin/asc "$here/assembly/index.ts" --config asconfig.json \
	--target release --outFile "$here/{{.Name}}.wasm")
set +x
` + checkTail

const testShTmpl = `#!/bin/sh
# Runs {{.Name}} in a real airlock host on the simulated device, fires its
# timer through the admin socket and waits for the tick in its log.
set -eu
cd "$(dirname "$0")"
[ -f {{.Name}}.wasm ] || ./build.sh
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
cat >"$tmp/runtime.toml" <<EOF
plugins = ["$(pwd)"]
state_dir = "$tmp/state"
[log]
audit = "off"
EOF
airlock run --config "$tmp/runtime.toml" >"$tmp/log" 2>&1 &
pid=$!
for i in $(seq 100); do grep -q "from {{.Name}}" "$tmp/log" && break; sleep 0.1; done
airlock trigger --config "$tmp/runtime.toml" {{.Name}} timer tick
for i in $(seq 100); do grep -q "tick timer=tick count=1" "$tmp/log" && { echo "ok: {{.Name}} started and ticked"; exit 0; }; sleep 0.1; done
cat "$tmp/log"
echo "FAIL: no tick in the log"
exit 1
`
