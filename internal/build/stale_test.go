package build

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestStaleFollowsLocalImports: a module built before a change to a
// package it imports through a local replace (as a checkout's plugins
// import the SDK) is stale; one built after every source is not.
func TestStaleFollowsLocalImports(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is not on PATH; the tests need it")
	}
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sdk/go.mod", "module example.com/sdk\n\ngo 1.24\n")
	write("sdk/sdk.go", "package sdk\n\nfunc Hello() string { return \"hi\" }\n")
	write("plugin/go.mod", "module example.com/plugin\n\ngo 1.24\n\nrequire example.com/sdk v0.0.0\n\nreplace example.com/sdk => ../sdk\n")
	write("plugin/main.go", "package main\n\nimport \"example.com/sdk\"\n\nfunc main() { _ = sdk.Hello() }\n")
	plugin := filepath.Join(root, "plugin")
	out := filepath.Join(plugin, "plugin.wasm")

	past := time.Now().Add(-time.Hour)
	for _, p := range []string{"sdk/go.mod", "sdk/sdk.go", "plugin/go.mod", "plugin/main.go"} {
		os.Chtimes(filepath.Join(root, p), past, past)
	}
	write("plugin/plugin.wasm", "built")
	if Stale(plugin, out) {
		t.Fatal("a module built after all its sources is stale")
	}
	future := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(root, "sdk/sdk.go"), future, future)
	if !Stale(plugin, out) {
		t.Fatal("a module built before a change to the SDK it imports is not stale")
	}
	os.Chtimes(filepath.Join(root, "sdk/sdk.go"), past, past)
	os.Chtimes(filepath.Join(root, "plugin/main.go"), future, future)
	if !Stale(plugin, out) {
		t.Fatal("a module built before a change to its own source is not stale")
	}
	os.Remove(out)
	if !Stale(plugin, out) {
		t.Fatal("a missing module is not stale")
	}
}
