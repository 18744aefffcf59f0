//go:build wasip1

// Command guest is a plugin that tries to leave its /data directory every way it can,
// and does its ordinary work there too. It prints one "name: ok ..." or "name: err ..."
// line per attempt; sandboxfs's integration test reads the transcript.
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"unsafe"
)

func main() {
	// Ordinary work.
	report("write own.txt", "", os.WriteFile("/data/own.txt", []byte("written by guest"), 0o644))
	read("read own.txt", "/data/own.txt")
	read("read pre.txt", "/data/pre.txt")
	report("mkdir dir", "", os.Mkdir("/data/dir", 0o755))
	report("rename own.txt", "", os.Rename("/data/own.txt", "/data/dir/own.txt"))
	read("read dir/own.txt", "/data/dir/own.txt")
	entries, err := os.ReadDir("/data")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	report("readdir", strings.Join(names, ","), err)

	// Through links planted by the host (as if found on a USB stick).
	read("read up/secret.txt", "/data/up/secret.txt")
	read("read abs/secret.txt", "/data/abs/secret.txt")
	read("read sibling", "/data/sibling")
	read("read chain/secret.txt", "/data/chain/secret.txt")
	report("create through dangling", "", os.WriteFile("/data/dangling", []byte("planted"), 0o644))
	_, err = os.ReadDir("/data/up")
	report("readdir up", "", err)

	// Links the plugin would make itself.
	report("symlink", "", os.Symlink("../b", "/data/mine"))
	report("hard link", "", os.Link("/data/pre.txt", "/data/hard"))

	// ".." past the preopen, via Go's path handling and via raw path_open on fd 3.
	read("read /data/../b/secret.txt", "/data/../b/secret.txt")

	// Paths under no preopen: the host's "/" answers ENOENT, not wazero's EBADF for fd -1.
	read("read /etc/hostname", "/etc/hostname")
	report("write /planted.txt", "", os.WriteFile("/planted.txt", []byte("planted"), 0o644))
	openRaw("path_open ../b/secret.txt", "../b/secret.txt")
	openRaw("path_open dir/../../b/secret.txt", "dir/../../b/secret.txt")
	openRaw("path_open up/secret.txt", "up/secret.txt")
}

func read(name, path string) {
	b, err := os.ReadFile(path)
	report(name, string(b), err)
}

func report(name, detail string, err error) {
	if err != nil {
		fmt.Printf("%s: err %v\n", name, err)
		return
	}
	fmt.Printf("%s: ok %s\n", name, detail)
}

// path_open is imported directly so that a path reaches the host exactly as written,
// without Go's own cleaning against its preopen table.
//
//go:wasmimport wasi_snapshot_preview1 path_open
func pathOpen(fd int32, dirflags int32, path unsafe.Pointer, pathLen int32, oflags int32,
	rightsBase, rightsInheriting int64, fdflags int32, result unsafe.Pointer) int32

func openRaw(name, path string) {
	const preopenFd, symlinkFollow, allRights = 3, 1, int64(^uint64(0) >> 35)
	var fd int32
	b := []byte(path)
	errno := pathOpen(preopenFd, symlinkFollow, unsafe.Pointer(&b[0]), int32(len(b)), 0,
		allRights, allRights, 0, unsafe.Pointer(&fd))
	if errno != 0 {
		report(name, "", syscall.Errno(errno))
		return
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	buf := make([]byte, 256)
	n, err := f.Read(buf)
	report(name, string(buf[:max(n, 0)]), err)
}
