package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// missing skips, or fails under AIRLOCK_TEST_STRICT=1 (CI), for an absent
// toolchain, as host/internal/testenv does.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("AIRLOCK_TEST_STRICT") == "1" {
		t.Fatalf("prerequisite missing (AIRLOCK_TEST_STRICT=1): %s", why)
	}
	t.Skipf("prerequisite missing: %s", why)
}

func scaffoldInto(t *testing.T, lang, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	var out, errb bytes.Buffer
	if code := run([]string{"new", "--lang", lang, "--dir", dir, name}, &out, &errb); code != 0 {
		t.Fatalf("airlock new --lang %s: exit %d: %s%s", lang, code, out.String(), errb.String())
	}
	return dir
}

func checkScaffold(t *testing.T, dir, name string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run([]string{"check", dir}, &out, &errb); code != 0 {
		t.Fatalf("airlock check: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{name + " 0.1.0: ok", "grants:   none beyond logs, config and clock", "triggers: timer tick (every 1m0s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check lacks %q:\n%s", want, out.String())
		}
	}
}

// A Go plugin from airlock new passes its own test (which builds it and
// runs it in a host on the simulated device through plugintest) at once.
func TestNewGo(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		missing(t, "the go command")
	}
	dir := scaffoldInto(t, "go", "fresh-go")
	cmd := exec.Command(gobin, "test", "./...")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test in the new plugin: %v\n%s", err, b)
	}
	checkScaffold(t, dir, "fresh-go")
	m, _ := os.ReadFile(filepath.Join(dir, "plugin.toml"))
	for _, section := range []string{"# [env]", "# [storage]", "# [supervisor]", "# [[dbus.call]]", "# [[dbus.property]]", "# [[trigger.dbus]]", "# [[trigger.udev]]", "# [[mount]]"} {
		if !strings.Contains(string(m), section) {
			t.Errorf("plugin.toml lacks the commented-out %s", section)
		}
	}
}

// Rust, C and AssemblyScript plugins build with their build.sh and pass
// airlock check; test.sh runs them when airlock is on PATH.
func TestNewOtherLanguages(t *testing.T) {
	for _, lang := range []string{"c", "rust", "as"} {
		t.Run(lang, func(t *testing.T) {
			switch lang {
			case "c":
				if _, err := exec.LookPath("clang"); err != nil {
					missing(t, "clang (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32)")
				}
			case "rust":
				if _, err := exec.LookPath("cargo"); err != nil {
					missing(t, "cargo (apt-get install rustc cargo libstd-rust-dev-wasm32)")
				}
			case "as":
				if _, err := exec.LookPath("node"); err != nil {
					missing(t, "node (apt-get install nodejs npm)")
				}
			}
			name := "fresh-" + lang
			dir := scaffoldInto(t, lang, name)
			cmd := exec.Command("./build.sh")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PATH=/nonexistent-airlock:"+os.Getenv("PATH"))
			b, err := cmd.CombinedOutput()
			if err != nil {
				s := string(b)
				if strings.Contains(s, "wasi-sysroot") || strings.Contains(s, "stdio.h' file not found") || strings.Contains(s, "wasm32-wasi") && strings.Contains(s, "can't find crate") {
					missing(t, "the "+lang+" wasm toolchain: "+s)
				}
				t.Fatalf("build.sh: %v\n%s", err, b)
			}
			checkScaffold(t, dir, name)
		})
	}
}

func TestNewErrors(t *testing.T) {
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"new"}, 2, "Usage: airlock new"},
		{[]string{"new", "Bad_Name"}, 1, `bad plugin name "Bad_Name"`},
		{[]string{"new", "--lang", "cobol", "x"}, 1, `unknown language "cobol"`},
		{[]string{"new", "--dir", full, "x"}, 1, "exists and is not empty"},
		{[]string{"new", "a", "b"}, 2, "Usage: airlock new"},
	}
	for _, c := range cases {
		r := airlock(c.args...)
		if printed, other := r.streams(); r.code != c.code || !strings.Contains(printed, c.want) || other != "" {
			t.Errorf("airlock %v: %v\nwant exit %d and %q on stderr", c.args, r, c.code, c.want)
		}
	}
}
