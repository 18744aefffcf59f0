package clitest

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// author is a plugin author's shell: the airlock binary first on PATH, and
// Go told never to fetch a module, so a build that needs anything from
// outside the project fails.
type author struct {
	t   *testing.T
	bin string
	env []string
}

func newAuthor(t *testing.T) *author {
	bin := testenv.Airlock(t)
	env := append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"),
		"GOPROXY=off", "GOFLAGS=", "npm_config_prefer_offline=true", "CARGO_TERM_COLOR=never")
	return &author{t: t, bin: bin, env: env}
}

// run runs a command in dir and returns its combined output and error.
func (a *author) run(dir, name string, args ...string) (string, error) {
	if name == "airlock" {
		name = a.bin // exec looks up PATH in this process's environment
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = a.env
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// must runs a command in dir and fails the test unless it succeeds.
func (a *author) must(dir, name string, args ...string) string {
	a.t.Helper()
	out, err := a.run(dir, name, args...)
	if err != nil {
		a.t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return out
}

// TestNewOutsideCheckout makes a plugin in each language with airlock new
// in a directory outside the checkout, builds it there with nothing but its
// toolchain and the SDK airlock new copied into it, and plays its scenario
// on the simulated device with the language's own test command (go test,
// cargo test, npm test; airlock test for C). Each SDK, as copied, is a package its ecosystem takes:
// a Go module with no dependencies, a crate cargo package accepts, an npm
// package npm pack accepts, one C header.
func TestNewOutsideCheckout(t *testing.T) {
	root := testenv.RepoRoot(t)
	for _, lang := range []string{"go", "c", "rust", "as"} {
		t.Run(lang, func(t *testing.T) {
			testenv.NeedToolchain(t, lang)
			a := newAuthor(t)
			work := t.TempDir()
			name := "my-" + lang
			a.must(work, "airlock", "new", "--lang", lang, name)
			dir := filepath.Join(work, name)
			noneMention(t, dir, root)
			// Before a build, check says how to build in this language.
			advice := map[string]string{"go": "airlock build ."}[lang]
			if advice == "" {
				advice = "./build.sh"
			}
			var rep struct {
				OK    bool
				Error string
			}
			out, err := a.run(dir, "airlock", "check", ".", "--json")
			if json.Unmarshal([]byte(out), &rep); err == nil || rep.OK || !strings.HasSuffix(rep.Error, "(build it with: "+advice+")") {
				t.Errorf("airlock check . --json before a build: %v\n%s\nwant ok false and the advice %q", err, out, advice)
			}
			switch lang {
			case "go":
				a.must(dir, "airlock", "build", ".")
				checked := a.must(dir, "airlock", "check", ".")
				if !strings.Contains(checked, name+" 0.1.0: ok") {
					t.Errorf("airlock check: %s", checked)
				}
				if mods := a.must(filepath.Join(dir, "airlock-sdk"), "go", "list", "-m", "all"); strings.TrimSpace(mods) != "github.com/airlockhq/airlock/sdk" {
					t.Errorf("the Go SDK module has dependencies:\n%s", mods)
				}
			case "c":
				sdkFiles, _ := filepath.Glob(filepath.Join(dir, "airlock*"))
				if len(sdkFiles) != 1 || filepath.Base(sdkFiles[0]) != "airlock.h" {
					t.Errorf("the C SDK is not one header: %v", sdkFiles)
				}
				buildAndCheck(t, a, dir, name)
			case "rust":
				rustSaysWhatToRun(t, a, dir)
				buildAndCheck(t, a, dir, name)
				a.must(filepath.Join(dir, "airlock-sdk", "rust"), "cargo", "package", "--no-verify", "--offline", "--allow-dirty")
			case "as":
				buildAndCheck(t, a, dir, name)
				a.must(filepath.Join(dir, "airlock-sdk", "assemblyscript"), "npm", "pack", "--dry-run")
			}
			// The scenarios in test/, as the language's own test command
			// runs them.
			habit := map[string][]string{"go": {"go", "test", "-v", "./..."}, "rust": {"cargo", "test", "--offline", "--", "--nocapture"},
				"as": {"npm", "test"}, "c": {"airlock", "test"}}[lang]
			if out := a.must(dir, habit[0], habit[1:]...); !strings.Contains(out, "ok   test/smoke.toml (5 steps") {
				t.Errorf("%s: %s", strings.Join(habit, " "), out)
			}
		})
	}
}

// buildAndCheck runs the project's build.sh, which ends with airlock check.
func buildAndCheck(t *testing.T, a *author, dir, name string) {
	t.Helper()
	out := a.must(dir, "./build.sh")
	if !strings.Contains(out, name+" 0.1.0: ok") {
		t.Errorf("build.sh did not end with a passing airlock check:\n%s", out)
	}
}

// noneMention fails if a file in dir names the checkout at root: a project
// from airlock new must not depend on where airlock's source is.
func noneMention(t *testing.T, dir, root string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(root)) {
			t.Errorf("%s names the checkout %s", p, root)
		}
		return nil
	})
}

// rustSaysWhatToRun: a rustc without the WASI standard library (a rustup
// toolchain without the wasm32-wasip1 target) gets an error that says what
// to run, not cargo's "can't find crate for std".
func rustSaysWhatToRun(t *testing.T, a *author, dir string) {
	t.Helper()
	fake := t.TempDir()
	script := "#!/bin/sh\ncase \"$1\" in --print) echo " + fake + ";; --version) echo 'rustc 1.99.0 (no wasm)';; *) exit 1;; esac\n"
	for _, f := range []string{"rustc", "rustup"} {
		if err := os.WriteFile(filepath.Join(fake, f), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bad := *a
	bad.env = append(append([]string{}, a.env...), "AIRLOCK_RUSTC="+filepath.Join(fake, "rustc"), "PATH="+fake+":"+os.Getenv("PATH"))
	out, err := bad.run(dir, "./build.sh")
	if want := "has no standard library for WebAssembly (WASI). Run: rustup target add wasm32-wasip1"; err == nil || !strings.Contains(out, want) {
		t.Errorf("build.sh with a rustc without wasm32-wasip1: err %v, output:\n%s\nwant %q", err, out, want)
	}
}
