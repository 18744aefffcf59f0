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

// Stale reports whether out is missing or older than any Go source, go.mod
// or go.sum in dir.
func Stale(dir, out string) bool {
	st, err := os.Stat(out)
	if err != nil {
		return true
	}
	stale := false
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || stale {
			return filepath.SkipAll
		}
		if d.IsDir() && p != dir && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if n := d.Name(); strings.HasSuffix(n, ".go") || n == "go.mod" || n == "go.sum" {
			if info, err := d.Info(); err == nil && info.ModTime().After(st.ModTime()) {
				stale = true
			}
		}
		return nil
	})
	return stale
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
