// Package sandboxfs gives a plugin a host directory as a wazero filesystem that never follows a
// symbolic link, so no link the plugin makes or finds (say, on a USB stick) leads it outside.
// Linux resolves every path beneath an open fd of the root (openat2 RESOLVE_BENEATH, no symlinks).
package sandboxfs

// Options says how a plugin may use its directory.
type Options struct {
	// ReadOnly refuses every change with EROFS: opening for writing, creating, truncating,
	// Mkdir, Chmod, Rename, Rmdir, Unlink and Utimens. Reading and listing still work.
	ReadOnly bool
}
