// Package build compiles a Go plugin's source to a wasm module with the
// flags that airlock needs, so that users need not remember them. The host
// uses it to build bundled plugins on the fly in development.
package build

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// HasGoSource reports whether dir holds a Go plugin's source.
func HasGoSource(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	return len(m) > 0
}

// Stale reports whether out is missing or older than a Go source, go.mod
// or go.sum that the plugin is built from: those in dir, and those of every
// package it imports from outside the module cache and the standard
// library (the SDK in a checkout, or a replace => ../path), so that a
// change to the SDK rebuilds the plugins that use it. When the go command
// cannot list the imports, the module is stale and the build says why.
func Stale(dir, out string) bool {
	st, err := os.Stat(out)
	if err != nil {
		return true
	}
	if newer(dir, st.ModTime(), true) {
		return true
	}
	deps, err := localDeps(dir)
	if err != nil {
		return true
	}
	for _, d := range deps {
		if d != dir && newer(d, st.ModTime(), false) {
			return true
		}
	}
	return false
}

// newer reports whether a Go source, go.mod or go.sum in dir (and below it,
// when deep) is newer than t.
func newer(dir string, t time.Time, deep bool) bool {
	found := false
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return filepath.SkipAll
		}
		if d.IsDir() && p != dir && (!deep || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if n := d.Name(); strings.HasSuffix(n, ".go") || n == "go.mod" || n == "go.sum" {
			if info, err := d.Info(); err == nil && info.ModTime().After(t) {
				found = true
			}
		}
		return nil
	})
	return found
}

// localDeps lists the directories of the packages that dir's package
// imports, for wasip1, outside the standard library and the module cache
// (whose contents never change under a version), with the root of each
// module they belong to, for its go.mod and go.sum.
func localDeps(dir string) ([]string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "list", "-deps", "-f",
		"{{if not .Standard}}{{.Dir}}\t{{with .Module}}{{.Dir}}{{end}}{{end}}", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	b, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	modcache := ""
	if mc, err := exec.CommandContext(ctx, gobin, "env", "GOMODCACHE").Output(); err == nil {
		modcache = strings.TrimSpace(string(mc))
	}
	seen := map[string]bool{}
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		for _, d := range strings.Split(line, "\t") {
			if d == "" || seen[d] || (modcache != "" && strings.HasPrefix(d, modcache+string(filepath.Separator))) {
				continue
			}
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

// Go compiles the Go package in dir to out as a wasip1 reactor. The go
// command's output is part of the error, so that a compile error reaches
// the user as the compiler said it.
func Go(ctx context.Context, dir, out string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build %s: the go command is not installed; install Go 1.24 or later, or build the module elsewhere and copy %s", dir, filepath.Base(out))
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	tmp := absOut + ".tmp"
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-buildmode=c-shared", "-trimpath", "-o", tmp, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("build %s: %v\n%s", dir, err, strings.TrimSpace(stderr.String()))
	}
	// Rename so that a running host never reads a half-written module.
	return os.Rename(tmp, absOut)
}
