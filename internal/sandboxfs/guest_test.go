//go:build linux

package sandboxfs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/airlockhq/airlock/internal/sandboxfs"
	"github.com/airlockhq/airlock/internal/testenv"
)

const secret = "plugin b's secret"

// TestGuestCannotLeaveData runs testdata/guest, a real wasip1 program, with plugin a's
// directory mounted as /data, and reads its transcript. The same guest run over wazero's
// own DirFS is the control: it must reach plugin b, or this test proves nothing.
func TestGuestCannotLeaveData(t *testing.T) {
	guest := compileWasip1(t, buildGuest(t))

	run := func(t *testing.T, mount func(dir string) experimentalsys.FS) (world, map[string]string) {
		w := newWorld(t)
		out := guest.run(t, mount(w.a), "guest")
		t.Logf("transcript:\n%s", out)
		lines := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			name, result, _ := strings.Cut(l, ": ")
			lines[name] = result
		}
		return w, lines
	}

	t.Run("sandboxfs", func(t *testing.T) {
		w, got := run(t, func(dir string) experimentalsys.FS { return sandboxfs.New(dir, sandboxfs.Options{}) })
		for name, want := range map[string]string{
			"write own.txt":                    "ok",
			"read own.txt":                     "ok written by guest",
			"read pre.txt":                     "ok put there by the host",
			"mkdir dir":                        "ok",
			"rename own.txt":                   "ok",
			"read dir/own.txt":                 "ok written by guest",
			"readdir":                          "ok abs,chain,dangling,dir,pre.txt,sibling,up",
			"symlink":                          "err",
			"hard link":                        "err",
			"readdir up":                       "err",
			"read up/secret.txt":               "err",
			"read abs/secret.txt":              "err",
			"read sibling":                     "err",
			"read chain/secret.txt":            "err",
			"create through dangling":          "err",
			"read /data/../b/secret.txt":       "err open /data/../b/secret.txt: No such file or directory",
			"read /etc/hostname":               "err open /etc/hostname: No such file or directory",
			"write /planted.txt":               "err open /planted.txt: No such file or directory",
			"path_open ../b/secret.txt":        "err",
			"path_open dir/../../b/secret.txt": "err",
			"path_open up/secret.txt":          "err",
		} {
			if g, ok := got[name]; !ok || !strings.HasPrefix(g, want) {
				t.Errorf("%s: got %q, want %q...", name, g, want)
			}
		}
		for name, result := range got {
			if strings.Contains(result, secret) {
				t.Errorf("%s: guest read plugin b's secret", name)
			}
		}
		for _, p := range []string{"planted.txt", "mine"} {
			if _, err := os.Lstat(filepath.Join(w.b, p)); err == nil {
				t.Errorf("guest created %s in plugin b's directory", p)
			}
		}
		if _, err := os.Lstat(filepath.Join(w.a, "mine")); err == nil {
			t.Error("guest made a symlink")
		}
		// The guest asked for 0644 and 0755; WASI's path_open and path_create_directory
		// carry no mode, and wazero creates with 0600 and 0700 (ABI.md §7).
		for p, want := range map[string]os.FileMode{"dir/own.txt": 0o600, "dir": 0o700} {
			if fi, err := os.Stat(filepath.Join(w.a, p)); err != nil || fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v, %v; want %v", p, fi.Mode().Perm(), err, want)
			}
		}
	})

	t.Run("control: wazero DirFS follows links", func(t *testing.T) {
		_, got := run(t, sysfs.DirFS)
		if g := got["read up/secret.txt"]; g != "ok "+secret {
			t.Errorf("DirFS: read up/secret.txt = %q; the guest no longer tries a real escape", g)
		}
	})
}

type world struct{ a, b string }

// newWorld makes plugin a's and plugin b's directories and plants links from a into b.
func newWorld(t *testing.T) world {
	t.Helper()
	top := t.TempDir()
	w := world{a: filepath.Join(top, "a"), b: filepath.Join(top, "b")}
	for _, step := range []error{
		os.Mkdir(w.a, 0o755),
		os.Mkdir(w.b, 0o755),
		os.WriteFile(filepath.Join(w.b, "secret.txt"), []byte(secret), 0o600),
		os.WriteFile(filepath.Join(w.a, "pre.txt"), []byte("put there by the host"), 0o644),
		os.Symlink("../b", filepath.Join(w.a, "up")),
		os.Symlink(w.b, filepath.Join(w.a, "abs")),
		os.Symlink("../b/secret.txt", filepath.Join(w.a, "sibling")),
		os.Symlink("up", filepath.Join(w.a, "chain")),
		os.Symlink("../b/planted.txt", filepath.Join(w.a, "dangling")),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	return w
}

// wasip1 is a compiled wasip1 program on a runtime of its own.
type wasip1 struct {
	r        wazero.Runtime
	compiled wazero.CompiledModule
}

// compileWasip1 compiles wasm on a runtime with WASI, closed when the test ends.
func compileWasip1(t *testing.T, wasm []byte) wasip1 {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	return wasip1{r, compiled}
}

// run runs the program once with fsys as /data and args, to its end (its files closed),
// and returns what it printed.
func (w wasip1) run(t *testing.T, fsys experimentalsys.FS, args ...string) string {
	t.Helper()
	ctx := context.Background()
	var out bytes.Buffer
	// "/" last, as internal/plugin mounts it, so that /data keeps fd 3.
	fsConfig := wazero.NewFSConfig().(sysfs.FSConfig).WithSysFSMount(fsys, "/data").(sysfs.FSConfig).WithSysFSMount(sandboxfs.Nowhere(), "/")
	config := wazero.NewModuleConfig().WithFSConfig(fsConfig).
		WithStdout(&out).WithStderr(&out).WithName("").WithArgs(args...)
	mod, err := w.r.InstantiateModule(ctx, w.compiled, config)
	if exit := (*sys.ExitError)(nil); errors.As(err, &exit) && exit.ExitCode() == 0 {
		err = nil
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s", args[0], err, out.String())
	}
	if mod != nil {
		mod.Close(ctx)
	}
	return out.String()
}

// buildGuest compiles testdata/guest for wasip1 into the test's temp dir.
func buildGuest(t *testing.T) []byte { return buildWasip1(t, "guest") }

// buildWasip1 builds testdata/name, a Go program, for wasip1.
func buildWasip1(t *testing.T, name string) []byte {
	t.Helper()
	goTool := testenv.NeedCommand(t, "go", "golang-go")
	out := filepath.Join(t.TempDir(), name+".wasm")
	cmd := exec.Command(goTool, "build", "-o", out, ".")
	cmd.Dir = filepath.Join("testdata", name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, b)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}
