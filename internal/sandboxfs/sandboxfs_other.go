//go:build !linux

package sandboxfs

import experimentalsys "github.com/tetratelabs/wazero/experimental/sys"

// New returns a filesystem that refuses every operation with ENOSYS: without openat2 or
// O_NOFOLLOW walks we cannot promise containment, so we fail closed instead of falling
// back to wazero's DirFS, which follows links.
func New(dir string, opts Options) experimentalsys.FS {
	return experimentalsys.UnimplementedFS{}
}
