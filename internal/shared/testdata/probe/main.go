// Command probe is the shared-directory tests' hostile plugin: on start
// it tries, on the shared directory [config] probe names, every change a
// read-only share must refuse and every way out of it, and logs one line
// per attempt ("probe op=... err=ERRNO").
package main

import (
	"errors"
	"fmt"
	"os"
	"path"
	"syscall"
	"unsafe"

	airlock "github.com/airlockhq/airlock/sdk/go"
)

func init() {
	airlock.OnStart(func() error {
		if dir, _ := airlock.Config("probe"); dir != "" {
			probe(dir)
		}
		return nil
	})
}

// probe tries dir's file "app.log", its subdirectory "old", its links
// "escape" (to a file outside) and "escape-dir" (to a directory outside),
// and "../secret.txt", beside dir on the host.
func probe(dir string) {
	f := path.Join(dir, "app.log")
	try := func(op string, err error) {
		airlock.Info(fmt.Sprintf("probe op=%s err=%s", op, errName(err)))
	}
	try("read", readErr(f))
	try("open-write", openErr(f, os.O_WRONLY))
	try("append", openErr(f, os.O_WRONLY|os.O_APPEND))
	try("open-trunc", openErr(f, os.O_RDWR|os.O_TRUNC))
	try("create", openErr(path.Join(dir, "new.txt"), os.O_WRONLY|os.O_CREATE))
	try("mkdir", os.Mkdir(path.Join(dir, "newdir"), 0o755))
	try("rename", os.Rename(f, path.Join(dir, "moved.log")))
	try("remove", os.Remove(f))
	try("rmdir", os.Remove(path.Join(dir, "old")))
	try("truncate", os.Truncate(f, 0))
	try("chtimes", os.Chtimes(f, airlock.Now(), airlock.Now()))
	try("link", os.Link(f, path.Join(dir, "hard.log")))
	try("symlink", os.Symlink("/", path.Join(dir, "root")))
	if h, err := os.Open(f); err == nil {
		try("ftruncate", h.Truncate(0))
		_, werr := h.Write([]byte("x"))
		try("fwrite", werr)
		h.Close()
	}
	try("symlink-file", readErr(path.Join(dir, "escape")))
	try("symlink-dir", readErr(path.Join(dir, "escape-dir", "secret.txt")))
	// ".." below the share, beneath a directory fd of it (Go would clean
	// a path given to os; raw path_open does not).
	if d, err := os.Open(dir); err == nil {
		try("dotdot", pathOpen(d, "../secret.txt"))
		try("dotdot-deep", pathOpen(d, "old/../../../../../../etc/passwd"))
		d.Close()
	}
	try("done", nil)
}

func readErr(p string) error {
	_, err := os.ReadFile(p)
	return err
}

func openErr(p string, flag int) error {
	h, err := os.OpenFile(p, flag, 0o644)
	if err == nil {
		h.Close()
	}
	return err
}

//go:wasmimport wasi_snapshot_preview1 path_open
func wasiPathOpen(fd int32, dirflags uint32, path unsafe.Pointer, pathLen uint32, oflags uint32, rightsBase, rightsInheriting uint64, fdflags uint32, newFd unsafe.Pointer) uint32

// pathOpen opens rel beneath the directory d as WASI's path_open does,
// following links, and reports the errno.
func pathOpen(d *os.File, rel string) error {
	b := []byte(rel)
	var fd int32
	const symlinkFollow, allRights = 1, uint64(^uint64(0) >> 35)
	if e := wasiPathOpen(int32(d.Fd()), symlinkFollow, unsafe.Pointer(&b[0]), uint32(len(b)), 0, allRights, allRights, 0, unsafe.Pointer(&fd)); e != 0 {
		return syscall.Errno(e)
	}
	return nil
}

// errName is the errno's name (EROFS), "ok", or the error's text.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		if n, ok := errnoNames[en]; ok {
			return n
		}
		return fmt.Sprintf("errno%d", int(en))
	}
	return fmt.Sprintf("%q", err.Error())
}

var errnoNames = map[syscall.Errno]string{
	syscall.EROFS: "EROFS", syscall.EPERM: "EPERM", syscall.EACCES: "EACCES", syscall.ELOOP: "ELOOP",
	syscall.ENOENT: "ENOENT", syscall.EBADF: "EBADF", syscall.ENOTCAPABLE: "ENOTCAPABLE", syscall.ENOSYS: "ENOSYS",
	syscall.EISDIR: "EISDIR", syscall.EXDEV: "EXDEV", syscall.ENOTSUP: "ENOTSUP",
}

func main() {}
