// Package sandboxfs gives a plugin a host directory as a wazero filesystem that never follows a
// symbolic link, so no link the plugin makes or finds (say, on a USB stick) leads it outside.
// Linux resolves every path beneath an open fd of the root (openat2 RESOLVE_BENEATH, no symlinks).
package sandboxfs

// Options says how a plugin may use its directory.
type Options struct {
	// ReadOnly refuses every change with EROFS: opening for writing, creating, truncating,
	// Mkdir, Chmod, Rename, Rmdir, Unlink and Utimens. Reading and listing still work.
	ReadOnly bool
	// Quota bounds the bytes the directory may hold (0: none) and MaxFiles
	// its files and directories (0: none): each file is charged its
	// apparent size in 4 KiB blocks, each directory one block, and what
	// the directory holds when the sandbox is made counts from the start.
	// A write past the quota is cut short, or fails, as at a full disk;
	// creating past MaxFiles fails. See quota_linux.go.
	Quota    int64
	MaxFiles int64
	// MaxOpen bounds the files open at once (0: DefaultMaxOpen).
	MaxOpen int
	// OnLimit, if set, is called when a bound refuses an operation, with
	// what ran out: "bytes", "files" or "open files".
	OnLimit func(what string)
}
