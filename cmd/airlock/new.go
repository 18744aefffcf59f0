package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/airlockhq/airlock/sdk"
)

// newLangs are the languages `airlock new` scaffolds, each with its SDK's
// directory in sdk.Files.
var newLangs = map[string]string{"go": "go", "rust": "rust", "c": "c", "as": "assemblyscript"}

var pluginName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

const newSynopsis = `new [--lang go|rust|c|as] [--dir DIR] <name>

Scaffolds a plugin in DIR (default ./<name>): a least-privilege plugin.toml
(logs, config and one timer; every capability section is there, commented
out), a handler for start and the timer, a test, a build script for Rust, C
and AssemblyScript, and a README. It builds and passes its test at once.`

type scaffold struct {
	Name, Lang, Crate string
	Dir               string
	SDKVersion        string
}

func cmdNew(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("new", newSynopsis, stderr)
	lang := fs.String("lang", "go", "the plugin's language: go, rust, c or as (AssemblyScript)")
	dir := fs.String("dir", "", "where to create it (default ./<name>); it must not exist or be empty")
	pos, err := parseArgs(fs, args, stdout, 1, 1)
	if err != nil {
		return err
	}
	s := scaffold{Name: pos[0], Lang: *lang, Dir: *dir, SDKVersion: sdk.Version}
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
	s.Crate = strings.ReplaceAll(s.Name, "-", "_")
	files, err := scaffoldFiles(s)
	if err != nil {
		return err
	}
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
		if err := os.WriteFile(p, f.data, mode); err != nil {
			return err
		}
		if !strings.HasPrefix(f.path, sdkDir+"/") {
			fmt.Fprintf(stdout, "  wrote %s\n", filepath.Join(s.Dir, f.path))
		}
	}
	if d := newLangs[s.Lang]; d != "c" {
		fmt.Fprintf(stdout, "  wrote %s (the airlock %s SDK %s, which this airlock carries)\n", filepath.Join(s.Dir, sdkDir), langName(s.Lang), sdk.Version)
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
		fmt.Fprintf(stdout, "  airlock build .             # builds %s.wasm\n", s.Name)
	default:
		fmt.Fprintf(stdout, "  ./build.sh                  # builds %s.wasm and checks it\n", s.Name)
	}
	fmt.Fprintf(stdout, "  airlock test                # plays test/*.toml on the simulated device (%s)\n  airlock dev                 # runs it until Ctrl-C, reloading it when it changes\n",
		map[string]string{"go": "or: go test", "rust": "or: cargo test", "c": "test/smoke.toml", "as": "or: npm test"}[s.Lang])
	return nil
}

// sdkDir is where a new project keeps the SDK that airlock new copied into
// it (all but C, whose SDK is airlock.h beside main.c).
const sdkDir = "airlock-sdk"

func langName(lang string) string {
	return map[string]string{"go": "Go", "rust": "Rust", "c": "C", "as": "AssemblyScript"}[lang]
}

type scaffoldFile struct {
	path string
	data []byte
}

// scaffoldFiles returns the project's files: its own, from the templates,
// and the SDK of its language from the copy this binary carries, so that
// the project builds anywhere with nothing but its toolchain.
func scaffoldFiles(s scaffold) ([]scaffoldFile, error) {
	tmpls := [][2]string{{"plugin.toml", manifestTmpl}, {"README.md", readmeTmpl}, {"test/smoke.toml", smokeTmpl}}
	var sdkFiles []string // paths in sdk.Files
	switch s.Lang {
	case "go":
		tmpls = append(tmpls, [2]string{"main.go", goMainTmpl}, [2]string{"main_test.go", goTestTmpl}, [2]string{"go.mod", goModTmpl},
			[2]string{".gitignore", ".airlock/\n*.wasm\n"})
		sdkFiles = []string{"go.mod", "go"}
	case "rust":
		tmpls = append(tmpls, [2]string{"Cargo.toml", cargoTmpl}, [2]string{"src/lib.rs", rustTmpl},
			[2]string{".cargo/config.toml", cargoConfigTmpl}, [2]string{".gitignore", ".airlock/\ntarget/\n*.wasm\n"},
			[2]string{"build.sh", rustBuildTmpl}, [2]string{"tests/airlock.rs", rustTestTmpl})
		sdkFiles = []string{"rust"}
	case "c":
		tmpls = append(tmpls, [2]string{"main.c", cTmpl}, [2]string{"build.sh", cBuildTmpl}, [2]string{".gitignore", ".airlock/\n*.wasm\n"})
	case "as":
		tmpls = append(tmpls, [2]string{"assembly/index.ts", asTmpl}, [2]string{"package.json", asPackageTmpl},
			[2]string{"asconfig.json", asConfigTmpl}, [2]string{"build.sh", asBuildTmpl},
			[2]string{".gitignore", ".airlock/\nnode_modules/\n*.wasm\n"})
		sdkFiles = []string{"assemblyscript"}
	}
	var files []scaffoldFile
	for _, t := range tmpls {
		var b bytes.Buffer
		if err := template.Must(template.New(t[0]).Parse(t[1])).Execute(&b, s); err != nil {
			return nil, err
		}
		files = append(files, scaffoldFile{t[0], b.Bytes()})
	}
	if s.Lang == "c" {
		h, err := sdk.Files.ReadFile("c/airlock.h")
		if err != nil {
			return nil, err
		}
		files = append(files, scaffoldFile{"airlock.h", h})
	}
	for _, root := range sdkFiles {
		err := fs.WalkDir(sdk.Files, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := sdk.Files.ReadFile(p)
			files = append(files, scaffoldFile{path.Join(sdkDir, p), b})
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
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
    airlock build .              # builds {{.Name}}.wasm (GOOS=wasip1 GOARCH=wasm)
{{else}}
    ./build.sh                   # builds {{.Name}}.wasm, then airlock check
{{end}}    airlock test                 # plays test/*.toml against it on the simulated device{{if eq .Lang "go"}}
    go test ./...                # the same, through go test{{else if eq .Lang "rust"}}
    cargo test                   # the same, through cargo test (after build.sh){{else if eq .Lang "as"}}
    npm test                     # the same, through npm (build.sh first){{end}}
    airlock dev                  # runs it until Ctrl-C; a rebuild or a plugin.toml edit reloads it

A scenario (` + "`test/smoke.toml`" + `) sets [config], seeds /data and the
environment, sends events (timers, udev, D-Bus signals) and waits for what
should follow (log lines, audit records, supervisor calls, files in /data).

The project builds with nothing but its toolchain: {{if eq .Lang "c"}}` + "`airlock.h`" + `
is the airlock C SDK{{else}}` + "`" + `airlock-sdk/` + "`" + ` holds the
airlock {{if eq .Lang "go"}}Go{{else if eq .Lang "rust"}}Rust{{else}}AssemblyScript{{end}} SDK {{.SDKVersion}}{{end}}, as the airlock that made it carries it.

Run it with the rest of your plugins by adding this directory to
` + "`plugins`" + ` in runtime.toml; with ` + "`reload = true`" + ` a running host picks up
each rebuild.
`

const goModTmpl = `module {{.Name}}

go 1.24

require github.com/airlockhq/airlock/sdk v{{.SDKVersion}}

// The airlock Go SDK, copied into airlock-sdk/ by airlock new. It has no
// dependencies. Once it is published, delete this line and that directory.
replace github.com/airlockhq/airlock/sdk => ./airlock-sdk
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
# The airlock Rust SDK, copied into airlock-sdk/ by airlock new.
airlock = { path = "airlock-sdk/rust", version = "{{.SDKVersion}}" }

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
import * as airlock from "@airlockhq/airlock/assembly/index";
export { airlock_abi_v1, airlock_on_event } from "@airlockhq/airlock/assembly/index";

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
# Builds {{.Name}}.wasm with the airlock Rust SDK in airlock-sdk/rust. It
# needs a rustc with the standard library for WebAssembly (WASI): rustup's
# with "rustup target add wasm32-wasip1", or Debian's (apt-get install rustc
# cargo libstd-rust-dev-wasm32). AIRLOCK_RUSTC picks the rustc to use.
set -eu
cd "$(dirname "$0")"
# wasi_target RUSTC prints the WASI target RUSTC has a standard library for.
wasi_target() {
	sysroot=$("$1" --print sysroot 2>/dev/null) || return 1
	for t in wasm32-wasip1 wasm32-wasi; do
		if [ -d "$sysroot/lib/rustlib/$t/lib" ]; then echo "$t"; return 0; fi
	done
	return 1
}
if [ -n "${AIRLOCK_RUSTC:-}" ]; then
	candidates="$AIRLOCK_RUSTC"
else
	# The rustc on PATH first (rustup's, usually), then Debian's.
	candidates="$(command -v rustc || true) /usr/bin/rustc"
fi
rustc= target= first=
for c in $candidates; do
	[ -x "$c" ] || continue
	[ -n "$first" ] || first=$c
	if target=$(wasi_target "$c"); then rustc=$c; break; fi
done
fix="rustup target add wasm32-wasip1"
command -v rustup >/dev/null 2>&1 || fix="install Rust with rustup (https://rustup.rs), then: rustup target add wasm32-wasip1; or on Debian: apt-get install rustc cargo libstd-rust-dev-wasm32"
if [ -z "$rustc" ]; then
	if [ -z "$first" ]; then
		echo "build.sh: no rustc found. To build for airlock: $fix" >&2
	else
		echo "build.sh: $first ($("$first" --version)) has no standard library for WebAssembly (WASI). Run: $fix" >&2
	fi
	exit 1
fi
if [ -n "$first" ] && [ "$first" != "$rustc" ]; then
	echo "note: $first ($("$first" --version)) has no WASI target, so this uses $rustc; to use $first, run: $fix" >&2
fi
# The cargo beside that rustc: a newer cargo may ask an older rustc what it
# cannot answer.
cargo="$(dirname "$rustc")/cargo"
[ -x "$cargo" ] || cargo=cargo
echo "using $("$rustc" --version) ($rustc), target $target"
echo "cargo build --offline --release --target $target"
RUSTC="$rustc" "$cargo" build --offline --release --target "$target"
cp "target/$target/release/{{.Crate}}.wasm" {{.Name}}.wasm
` + checkTail

const cBuildTmpl = `#!/bin/sh
# Builds {{.Name}}.wasm, a WASI reactor, with clang and airlock.h (the
# airlock C SDK, one header). Needs (Debian) apt-get install clang lld
# wasi-libc libclang-rt-dev-wasm32.
set -eu
cd "$(dirname "$0")"
set -x
clang --target=wasm32-wasi -mexec-model=reactor -Os -Wall -Wl,--strip-all \
	-I . -o {{.Name}}.wasm main.c
set +x
` + checkTail

const asPackageTmpl = `{
  "name": "{{.Name}}",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "scripts": {
    "build": "asc assembly/index.ts --config asconfig.json --target release --outFile {{.Name}}.wasm",
    "test": "./build.sh && airlock test"
  },
  "dependencies": {
    "@airlockhq/airlock": "file:airlock-sdk/assemblyscript"
  },
  "devDependencies": {
    "assemblyscript": "0.27.37"
  }
}
`

// asConfigTmpl takes the SDK's compiler options (its runtime, its abort
// and seed functions) from the SDK package itself.
const asConfigTmpl = `{
  "extends": "./node_modules/@airlockhq/airlock/asconfig.json"
}
`

const asBuildTmpl = `#!/bin/sh
# Builds {{.Name}}.wasm with the AssemblyScript compiler (npm install
# fetches it once; the airlock SDK is the package in airlock-sdk/).
set -eu
cd "$(dirname "$0")"
[ -x node_modules/.bin/asc ] || npm install --no-audit --no-fund
npm run build
` + checkTail

const smokeTmpl = `# A scenario that airlock test plays: the plugin alone on the simulated
# device, with this file's [config] (over plugin.toml's), then its steps in
# order. A step sends an event (timer, udev, dbus) or waits for an outcome
# (log, audit, supervisor, data); a wait fails at the timeout, or at once
# when the plugin traps or logs an error. See airlock test --help.
description = "greets with its config, and counts the ticks of its timer"
timeout = "60s"

[config]
greeting = "howdy"

# [data]                          # /data seed (needs [storage] data = true)
# "state.json" = "{}"

[[step]]
log = "howdy from {{.Name}}"

# A tick replaces one of the same timer still queued, so wait for each
# before the next.
[[step]]
timer = "tick"

[[step]]
log = "tick timer=tick count=1"

[[step]]
timer = "tick"

[[step]]
log = ["tick timer=tick count=2", "plugin={{.Name}}"]
`

const goTestTmpl = `package main

import (
	"os/exec"
	"testing"
)

// go test plays the scenarios in test/ with airlock test: the plugin,
// built for wasm, in a real airlock host on the simulated device.
func TestScenarios(t *testing.T) {
	out, err := exec.Command("airlock", "test", ".").CombinedOutput()
	t.Logf("airlock test:\n%s", out)
	if err != nil {
		t.Fatalf("airlock test: %v (is airlock on PATH?)", err)
	}
}
`

const rustTestTmpl = `//! cargo test plays the scenarios in test/ with airlock test: the plugin,
//! built for wasm by build.sh, in a real airlock host on the simulated device.
use std::process::Command;

#[test]
fn scenarios() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let build = Command::new(format!("{}/build.sh", dir)).status().expect("run build.sh");
    assert!(build.success(), "build.sh failed");
    let out = Command::new("airlock")
        .args(["test", dir])
        .output()
        .expect("run airlock test (is airlock on PATH?)");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "airlock test failed");
}
`
