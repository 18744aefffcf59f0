//go:build linux

package sandboxfs

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"golang.org/x/sys/unix"

	"github.com/airlockhq/airlock/internal/testenv"
)

const secret = "plugin b's secret"

// world lays out two plugins' directories side by side, as the host does, and plants in
// plugin a's directory every kind of link that could lead into plugin b's. Links are made
// by the host here because the FS itself refuses to make them; on a USB stick they
// arrive ready-made.
type world struct {
	a, b string
}

func newWorld(t *testing.T) world {
	t.Helper()
	top := t.TempDir()
	w := world{a: filepath.Join(top, "a"), b: filepath.Join(top, "b")}
	for _, d := range []string{w.a, w.b, filepath.Join(w.a, "sub")} {
		must(t, os.Mkdir(d, 0o755))
	}
	must(t, os.WriteFile(filepath.Join(w.b, "secret.txt"), []byte(secret), 0o600))
	must(t, os.WriteFile(filepath.Join(w.a, "own.txt"), []byte("mine"), 0o644))
	must(t, os.WriteFile(filepath.Join(w.a, "sub", "inner.txt"), []byte("inner"), 0o644))
	links := map[string]string{
		"up":         "../b",                           // relative, out through ..
		"abs":        w.b,                              // absolute
		"sibling":    "../b/secret.txt",                // straight at a sibling's file
		"chain1":     "chain2",                         // a chain whose last hop leaves
		"chain2":     "sub/deep",                       //
		"sub/deep":   "../../b",                        //
		"inside":     "own.txt",                        // stays inside, still refused
		"dangling":   "../b/planted.txt",               // O_CREAT through it would plant a file
		"sub/proc":   "/proc/self/root" + w.b,          // a magic link on the way
		"sub/rootln": "../../../../../../../../../../", // the host's /
	}
	for name, target := range links {
		must(t, os.Symlink(target, filepath.Join(w.a, name)))
	}
	return w
}

// modes runs f against both resolvers: openat2, and the openat walk that old kernels get.
func modes(t *testing.T, f func(t *testing.T, newFS func(dir string, opts Options) experimentalsys.FS)) {
	t.Run("openat2", func(t *testing.T) {
		fsys := New(t.TempDir(), Options{}).(*sandbox)
		if fsys.walk {
			testenv.Missing(t, "openat2(2) is unavailable (Linux < 5.6 or a seccomp filter)")
		}
		f(t, New)
	})
	t.Run("walk", func(t *testing.T) {
		f(t, func(dir string, opts Options) experimentalsys.FS { return newFS(dir, opts, true) })
	})
}

func TestEscapesAreRefused(t *testing.T) {
	modes(t, func(t *testing.T, newFS func(string, Options) experimentalsys.FS) {
		w := newWorld(t)
		fsys := newFS(w.a, Options{})

		type op struct {
			name string
			do   func() experimentalsys.Errno
		}
		open := func(p string, flag experimentalsys.Oflag) func() experimentalsys.Errno {
			return func() experimentalsys.Errno {
				f, errno := fsys.OpenFile(p, flag, 0o644)
				if errno == 0 {
					f.Close()
				}
				return errno
			}
		}
		stat := func(p string) func() experimentalsys.Errno {
			return func() experimentalsys.Errno { _, errno := fsys.Stat(p); return errno }
		}
		lstat := func(p string) func() experimentalsys.Errno {
			return func() experimentalsys.Errno { _, errno := fsys.Lstat(p); return errno }
		}
		creat := experimentalsys.O_CREAT | experimentalsys.O_WRONLY
		var cases []struct {
			op
			want experimentalsys.Errno
		}
		add := func(want experimentalsys.Errno, name string, do func() experimentalsys.Errno) {
			cases = append(cases, struct {
				op
				want experimentalsys.Errno
			}{op{name, do}, want})
		}
		for _, l := range []string{"up", "abs", "chain1", "sub/deep", "sub/proc", "sub/rootln"} {
			add(experimentalsys.ELOOP, "open "+l+"/secret.txt", open(l+"/secret.txt", experimentalsys.O_RDONLY))
			add(experimentalsys.ELOOP, "create "+l+"/new.txt", open(l+"/new.txt", creat))
			add(experimentalsys.ELOOP, "opendir "+l, open(l, experimentalsys.O_DIRECTORY))
			add(experimentalsys.ELOOP, "stat "+l, stat(l))
			add(experimentalsys.ELOOP, "lstat "+l+"/secret.txt", lstat(l+"/secret.txt"))
			add(experimentalsys.ELOOP, "mkdir "+l+"/x", func() experimentalsys.Errno { return fsys.Mkdir(l+"/x", 0o755) })
			add(experimentalsys.ELOOP, "unlink "+l+"/secret.txt", func() experimentalsys.Errno { return fsys.Unlink(l + "/secret.txt") })
			add(experimentalsys.ELOOP, "rename own.txt "+l+"/stolen", func() experimentalsys.Errno { return fsys.Rename("own.txt", l+"/stolen") })
			add(experimentalsys.ELOOP, "rename "+l+"/secret.txt out", func() experimentalsys.Errno { return fsys.Rename(l+"/secret.txt", "stolen") })
			add(experimentalsys.ELOOP, "chmod "+l+"/secret.txt", func() experimentalsys.Errno { return fsys.Chmod(l+"/secret.txt", 0o777) })
			add(experimentalsys.ELOOP, "utimens "+l+"/secret.txt", func() experimentalsys.Errno { return fsys.Utimens(l+"/secret.txt", 0, 0) })
		}
		for _, l := range []string{"sibling", "inside", "dangling"} {
			add(experimentalsys.ELOOP, "open "+l, open(l, experimentalsys.O_RDONLY))
			add(experimentalsys.ELOOP, "open for write "+l, open(l, experimentalsys.O_RDWR))
			add(experimentalsys.ELOOP, "stat "+l, stat(l))
			add(experimentalsys.ELOOP, "chmod "+l, func() experimentalsys.Errno { return fsys.Chmod(l, 0o777) })
			add(experimentalsys.ELOOP, "utimens "+l, func() experimentalsys.Errno { return fsys.Utimens(l, 0, 0) })
		}
		add(experimentalsys.ELOOP, "create through dangling", open("dangling", creat))
		add(experimentalsys.EEXIST, "create excl over dangling", open("dangling", creat|experimentalsys.O_EXCL))
		for _, p := range []string{"..", "../b/secret.txt", "sub/../../b/secret.txt", "/../b/secret.txt", "sub/../.."} {
			add(experimentalsys.EPERM, "open "+p, open(p, experimentalsys.O_RDONLY))
			add(experimentalsys.EPERM, "stat "+p, stat(p))
		}
		add(experimentalsys.EPERM, "mkdir ../b/x", func() experimentalsys.Errno { return fsys.Mkdir("../b/x", 0o755) })
		add(experimentalsys.EPERM, "rename own.txt ../b/stolen", func() experimentalsys.Errno { return fsys.Rename("own.txt", "../b/stolen") })
		add(experimentalsys.EPERM, "unlink ../b/secret.txt", func() experimentalsys.Errno { return fsys.Unlink("../b/secret.txt") })
		add(experimentalsys.EPERM, "symlink", func() experimentalsys.Errno { return fsys.Symlink("../b", "mine") })
		add(experimentalsys.EPERM, "symlink inside", func() experimentalsys.Errno { return fsys.Symlink("own.txt", "mine") })
		add(experimentalsys.EPERM, "hard link", func() experimentalsys.Errno { return fsys.Link("own.txt", "hard") })
		add(experimentalsys.EPERM, "hard link via up", func() experimentalsys.Errno { return fsys.Link("up/secret.txt", "hard") })

		for _, c := range cases {
			if got := c.do(); got != c.want {
				t.Errorf("%s: errno %v, want %v", c.name, got, c.want)
			}
		}

		got, err := os.ReadFile(filepath.Join(w.b, "secret.txt"))
		if err != nil || string(got) != secret {
			t.Errorf("plugin b's secret changed: %q, %v", got, err)
		}
		st, err := os.Stat(filepath.Join(w.b, "secret.txt"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("plugin b's secret mode changed: %v, %v", st, err)
		}
		for _, p := range []string{"b/planted.txt", "b/new.txt", "b/x", "b/stolen", "a/mine", "a/hard"} {
			if _, err := os.Lstat(filepath.Join(filepath.Dir(w.a), p)); err == nil {
				t.Errorf("%s was created", p)
			}
		}
	})
}

// TestLinksThemselvesAreUsable checks the operations that act on a link, not through it.
func TestLinksThemselvesAreUsable(t *testing.T) {
	modes(t, func(t *testing.T, newFS func(string, Options) experimentalsys.FS) {
		w := newWorld(t)
		fsys := newFS(w.a, Options{})
		st, errno := fsys.Lstat("up")
		if errno != 0 || st.Mode&fs.ModeSymlink == 0 {
			t.Errorf("Lstat(up) = %v, %v; want a symlink", st.Mode, errno)
		}
		if target, errno := fsys.Readlink("sub/deep"); errno != 0 || target != "../../b" {
			t.Errorf("Readlink(sub/deep) = %q, %v", target, errno)
		}
		if _, errno := fsys.Readlink("own.txt"); errno != experimentalsys.EINVAL {
			t.Errorf("Readlink(own.txt) = %v, want EINVAL", errno)
		}
		if errno := fsys.Rename("up", "up2"); errno != 0 {
			t.Errorf("Rename(up, up2) = %v", errno)
		}
		if errno := fsys.Unlink("up2"); errno != 0 {
			t.Errorf("Unlink(up2) = %v", errno)
		}
		if errno := fsys.Unlink("abs/"); errno != experimentalsys.ENOTDIR {
			t.Errorf("Unlink(abs/) = %v, want ENOTDIR", errno) // "link/" would follow
		}
		if errno := fsys.Rmdir("abs"); errno != experimentalsys.ENOTDIR {
			t.Errorf("Rmdir(abs) = %v, want ENOTDIR", errno)
		}
		if _, err := os.Stat(filepath.Join(w.b, "secret.txt")); err != nil {
			t.Errorf("plugin b lost its secret: %v", err)
		}
		// The listing shows links as links; the plugin sees them but cannot use them.
		names := readdirNames(t, fsys, ".")
		for _, want := range []string{"abs", "own.txt", "sub", "chain1"} {
			if !slices.Contains(names, want) {
				t.Errorf("readdir(.) = %v, missing %s", names, want)
			}
		}
	})
}

// TestDirReplacedBySymlink swaps a directory for a link while the plugin holds it open:
// new lookups refuse the link, and the open fd keeps meaning the original directory.
func TestDirReplacedBySymlink(t *testing.T) {
	modes(t, func(t *testing.T, newFS func(string, Options) experimentalsys.FS) {
		w := newWorld(t)
		fsys := newFS(w.a, Options{})
		dir, errno := fsys.OpenFile("sub", experimentalsys.O_DIRECTORY, 0)
		if errno != 0 {
			t.Fatal(errno)
		}
		defer dir.Close()
		must(t, os.Rename(filepath.Join(w.a, "sub"), filepath.Join(w.a, "moved")))
		must(t, os.Symlink("../b", filepath.Join(w.a, "sub")))

		if _, errno := fsys.OpenFile("sub/secret.txt", experimentalsys.O_RDONLY, 0); errno != experimentalsys.ELOOP {
			t.Errorf("open sub/secret.txt after swap = %v, want ELOOP", errno)
		}
		if errno := fsys.Mkdir("sub/x", 0o755); errno != experimentalsys.ELOOP {
			t.Errorf("mkdir sub/x after swap = %v, want ELOOP", errno)
		}
		dirents, errno := dir.Readdir(-1)
		if errno != 0 {
			t.Fatal(errno)
		}
		var names []string
		for _, d := range dirents {
			names = append(names, d.Name)
		}
		if slices.Contains(names, "secret.txt") || !slices.Contains(names, "inner.txt") {
			t.Errorf("held dir lists %v, want the original sub", names)
		}
	})
}

// TestOrdinaryUse is the plugin's everyday work: none of it may be broken by the sandbox.
func TestOrdinaryUse(t *testing.T) {
	modes(t, func(t *testing.T, newFS func(string, Options) experimentalsys.FS) {
		w := newWorld(t)
		fsys := newFS(w.a, Options{})

		errnoOK(t, "mkdir", fsys.Mkdir("state", 0o750))
		errnoOK(t, "mkdir trailing slash", fsys.Mkdir("state/nested/", 0o750))
		if errno := fsys.Mkdir("state", 0o750); errno != experimentalsys.EEXIST {
			t.Errorf("mkdir existing = %v, want EEXIST", errno)
		}
		f, errno := fsys.OpenFile("state/db.json", experimentalsys.O_CREAT|experimentalsys.O_RDWR|experimentalsys.O_TRUNC, 0o640)
		errnoOK(t, "create", errno)
		if n, errno := f.Write([]byte("hello world")); errno != 0 || n != 11 {
			t.Fatalf("write = %d, %v", n, errno)
		}
		if n, errno := f.Pwrite([]byte("W"), 6); errno != 0 || n != 1 {
			t.Fatalf("pwrite = %d, %v", n, errno)
		}
		if off, errno := f.Seek(0, io.SeekStart); errno != 0 || off != 0 {
			t.Fatalf("seek = %d, %v", off, errno)
		}
		buf := make([]byte, 64)
		n, errno := f.Read(buf)
		if errno != 0 || string(buf[:n]) != "hello World" {
			t.Fatalf("read = %q, %v", buf[:n], errno)
		}
		if n, errno := f.Read(buf); errno != 0 || n != 0 {
			t.Fatalf("read at EOF = %d, %v", n, errno)
		}
		n, errno = f.Pread(buf[:5], 6)
		if errno != 0 || string(buf[:n]) != "World" {
			t.Fatalf("pread = %q, %v", buf[:n], errno)
		}
		errnoOK(t, "truncate", f.Truncate(5))
		errnoOK(t, "set append", f.SetAppend(true))
		if f.(experimentalsys.PollableFile).IsNonblock() {
			t.Error("IsNonblock without O_NONBLOCK = true")
		}
		if !f.IsAppend() {
			t.Error("IsAppend after SetAppend(true) = false")
		}
		if _, errno := f.Write([]byte("!")); errno != 0 {
			t.Fatal(errno)
		}
		pf := f.(experimentalsys.PollableFile)
		errnoOK(t, "set nonblock", pf.SetNonblock(true))
		if ready, errno := pf.Poll(experimentalsys.POLLIN, 0); !pf.IsNonblock() || !ready || errno != 0 {
			t.Errorf("nonblock %v, poll = %v, %v", pf.IsNonblock(), ready, errno)
		}
		errnoOK(t, "sync", f.Sync())
		errnoOK(t, "datasync", f.Datasync())
		errnoOK(t, "futimens", f.Utimens(1e9, 2e9))
		st, errno := f.Stat()
		if errno != 0 || st.Size != 6 || st.Mode.Perm() != 0o640 || st.Mtim != 2e9 {
			t.Errorf("fstat = %+v, %v", st, errno)
		}
		if isDir, _ := f.IsDir(); isDir {
			t.Error("file says it is a dir")
		}
		errnoOK(t, "close", f.Close())
		if _, errno := f.Read(buf); errno != experimentalsys.EBADF {
			t.Errorf("read after close = %v, want EBADF", errno)
		}
		if got, _ := os.ReadFile(filepath.Join(w.a, "state", "db.json")); string(got) != "hello!" {
			t.Errorf("on disk: %q", got)
		}

		errnoOK(t, "chmod", fsys.Chmod("state/db.json", 0o600))
		errnoOK(t, "utimens", fsys.Utimens("state/db.json", experimentalsys.UTIME_OMIT, 3e9))
		st, errno = fsys.Stat("state/db.json")
		if errno != 0 || st.Mode.Perm() != 0o600 || st.Mtim != 3e9 {
			t.Errorf("stat after chmod/utimens = %+v, %v", st, errno)
		}
		errnoOK(t, "utimens atime", fsys.Utimens("state/db.json", 5e9, experimentalsys.UTIME_OMIT))
		if st, errno = fsys.Lstat("state/db.json"); errno != 0 || st.Atim != 5e9 || st.Mtim != 3e9 {
			t.Errorf("lstat after utimens = %+v, %v", st, errno)
		}
		errnoOK(t, "rename", fsys.Rename("state/db.json", "state/nested/db.json"))
		errnoOK(t, "rename dir", fsys.Rename("state/nested", "nested"))
		if _, errno := fsys.Stat("nested/db.json"); errno != 0 {
			t.Errorf("stat renamed = %v", errno)
		}
		if _, errno := fsys.Stat("sub/../own.txt"); errno != 0 {
			t.Errorf("stat sub/../own.txt = %v", errno) // .. that stays inside is fine
		}
		if st, errno := fsys.Stat(""); errno != 0 || !st.Mode.IsDir() {
			t.Errorf("stat root = %v, %v", st.Mode, errno)
		}
		if errno := fsys.Rmdir("nested"); errno != experimentalsys.ENOTEMPTY {
			t.Errorf("rmdir non-empty = %v", errno)
		}
		if errno := fsys.Unlink("nested"); errno != experimentalsys.EISDIR {
			t.Errorf("unlink dir = %v, want EISDIR", errno)
		}
		errnoOK(t, "unlink", fsys.Unlink("nested/db.json"))
		errnoOK(t, "rmdir", fsys.Rmdir("nested"))
		errnoOK(t, "rmdir", fsys.Rmdir("state/"))
		if _, errno := fsys.Stat("nested"); errno != experimentalsys.ENOENT {
			t.Errorf("stat removed = %v", errno)
		}

		// Readdir in chunks, then rewind and see a file added in between.
		for i := range 40 {
			must(t, os.WriteFile(filepath.Join(w.a, "sub", "f"+string(rune('A'+i))), nil, 0o644))
		}
		d, errno := fsys.OpenFile("sub", experimentalsys.O_DIRECTORY, 0)
		errnoOK(t, "opendir", errno)
		defer d.Close()
		var total int
		for {
			chunk, errno := d.Readdir(7)
			errnoOK(t, "readdir", errno)
			total += len(chunk)
			if len(chunk) < 7 {
				break
			}
		}
		if total != 44 { // 40 + inner.txt + deep + proc + rootln
			t.Errorf("readdir total = %d, want 44", total)
		}
		must(t, os.WriteFile(filepath.Join(w.a, "sub", "late"), nil, 0o644))
		_, errno = d.Seek(0, io.SeekStart)
		errnoOK(t, "rewind", errno)
		all, errno := d.Readdir(-1)
		errnoOK(t, "readdir all", errno)
		if len(all) != 45 {
			t.Errorf("readdir after rewind = %d entries, want 45", len(all))
		}
		for _, e := range all {
			if e.Name == "deep" && e.Type != fs.ModeSymlink || e.Name == "inner.txt" && e.Type != 0 || e.Ino == 0 {
				t.Errorf("dirent %+v", e)
			}
		}
		if _, errno := d.Write([]byte("x")); errno != experimentalsys.EISDIR {
			t.Errorf("write to dir = %v, want EISDIR", errno)
		}
		if _, errno := fsys.OpenFile("sub", experimentalsys.O_DIRECTORY|experimentalsys.O_RDWR, 0); errno != experimentalsys.EISDIR {
			t.Errorf("open dir for write = %v, want EISDIR", errno)
		}
	})
}

func TestReadOnly(t *testing.T) {
	modes(t, func(t *testing.T, newFS func(string, Options) experimentalsys.FS) {
		w := newWorld(t)
		fsys := newFS(w.a, Options{ReadOnly: true})
		for _, flag := range []experimentalsys.Oflag{
			experimentalsys.O_WRONLY, experimentalsys.O_RDWR, experimentalsys.O_CREAT,
			experimentalsys.O_TRUNC, experimentalsys.O_APPEND,
		} {
			if _, errno := fsys.OpenFile("own.txt", flag, 0o644); errno != experimentalsys.EROFS {
				t.Errorf("open flag %v = %v, want EROFS", flag, errno)
			}
		}
		for name, errno := range map[string]experimentalsys.Errno{
			"mkdir":   fsys.Mkdir("x", 0o755),
			"chmod":   fsys.Chmod("own.txt", 0o777),
			"rename":  fsys.Rename("own.txt", "x"),
			"rmdir":   fsys.Rmdir("sub"),
			"unlink":  fsys.Unlink("own.txt"),
			"utimens": fsys.Utimens("own.txt", 0, 0),
		} {
			if errno != experimentalsys.EROFS {
				t.Errorf("%s = %v, want EROFS", name, errno)
			}
		}
		f, errno := fsys.OpenFile("own.txt", experimentalsys.O_RDONLY, 0)
		errnoOK(t, "open", errno)
		defer f.Close()
		buf := make([]byte, 16)
		if n, errno := f.Read(buf); errno != 0 || string(buf[:n]) != "mine" {
			t.Errorf("read = %q, %v", buf[:n], errno)
		}
		if _, errno := f.Write([]byte("x")); errno != experimentalsys.EBADF {
			t.Errorf("write = %v, want EBADF", errno)
		}
		if errno := f.Truncate(0); errno != experimentalsys.EBADF {
			t.Errorf("truncate = %v, want EBADF", errno)
		}
		if errno := f.Utimens(0, 0); errno != experimentalsys.EBADF {
			t.Errorf("futimens = %v, want EBADF", errno)
		}
		if names := readdirNames(t, fsys, "sub"); !slices.Contains(names, "inner.txt") {
			t.Errorf("readdir(sub) = %v", names)
		}
		if got, _ := os.ReadFile(filepath.Join(w.a, "own.txt")); string(got) != "mine" {
			t.Errorf("own.txt changed: %q", got)
		}
	})
}

// TestMountPointIsCrossed checks that a filesystem mounted inside the root (a USB stick
// under /media) is reachable: we refuse links, not mounts.
func TestMountPointIsCrossed(t *testing.T) {
	testenv.NeedRoot(t, "mount a tmpfs")
	modes(t, func(t *testing.T, newFS func(string, Options) experimentalsys.FS) {
		root := t.TempDir()
		stick := filepath.Join(root, "stick")
		must(t, os.Mkdir(stick, 0o755))
		if err := unix.Mount("tmpfs", stick, "tmpfs", unix.MS_NODEV|unix.MS_NOSUID, "size=1m"); err != nil {
			testenv.Missing(t, "mount(2) is not permitted here: "+err.Error())
		}
		t.Cleanup(func() { unix.Unmount(stick, unix.MNT_DETACH) })
		must(t, os.WriteFile(filepath.Join(stick, "photo.jpg"), []byte("jpg"), 0o644))
		fsys := newFS(root, Options{})
		f, errno := fsys.OpenFile("stick/photo.jpg", experimentalsys.O_RDONLY, 0)
		errnoOK(t, "open across mount", errno)
		f.Close()
		if _, errno := fsys.Stat("stick/../stick/photo.jpg"); errno != 0 {
			t.Errorf("stat via .. across mount = %v", errno)
		}
	})
}

// TestSpecialFilesAreRefused: a FIFO on a USB stick must neither hang the host in open
// nor become a channel to whoever holds its other end.
func TestSpecialFilesAreRefused(t *testing.T) {
	modes(t, func(t *testing.T, newFS func(string, Options) experimentalsys.FS) {
		dir := t.TempDir()
		must(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o666))
		fsys := newFS(dir, Options{})
		if _, errno := fsys.OpenFile("fifo", experimentalsys.O_RDONLY, 0); errno != experimentalsys.EACCES {
			t.Errorf("open fifo for reading = %v, want EACCES", errno)
		}
		// Without a reader the kernel already refuses (ENXIO) a non-blocking open for writing.
		if _, errno := fsys.OpenFile("fifo", experimentalsys.O_WRONLY, 0); errno == 0 {
			t.Error("open fifo for writing succeeded")
		}
		if st, errno := fsys.Lstat("fifo"); errno != 0 || st.Mode&fs.ModeNamedPipe == 0 {
			t.Errorf("lstat fifo = %v, %v", st.Mode, errno)
		}
	})
}

func TestMissingRoot(t *testing.T) {
	fsys := New(filepath.Join(t.TempDir(), "gone"), Options{})
	if _, errno := fsys.OpenFile("x", experimentalsys.O_RDONLY, 0); errno != experimentalsys.ENOENT {
		t.Errorf("open in missing root = %v, want ENOENT", errno)
	}
	if errno := fsys.Mkdir("x", 0o755); errno != experimentalsys.ENOENT {
		t.Errorf("mkdir in missing root = %v, want ENOENT", errno)
	}
}

func readdirNames(t *testing.T, fsys experimentalsys.FS, dir string) []string {
	t.Helper()
	d, errno := fsys.OpenFile(dir, experimentalsys.O_DIRECTORY, 0)
	errnoOK(t, "opendir "+dir, errno)
	defer d.Close()
	dirents, errno := d.Readdir(-1)
	errnoOK(t, "readdir "+dir, errno)
	var names []string
	for _, e := range dirents {
		names = append(names, e.Name)
	}
	return names
}

func errnoOK(t *testing.T, what string, errno experimentalsys.Errno) {
	t.Helper()
	if errno != 0 {
		t.Fatalf("%s: %v", what, errno)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
