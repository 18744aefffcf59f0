// Package atomicfile replaces files so that a crash or a failed write never
// leaves a truncated one: the bundles the host unpacks, a bundle `airlock
// sign` rewrites, and the host's cache of instrumented modules.
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Replace writes data to a temporary file beside path, with mode perm,
// syncs it, renames it over path and syncs the directory: an interrupted or
// failed write leaves the old file whole, never a truncated one, and no
// temporary file behind; once Replace returns, the new file survives a
// power cut. A symlink at path is replaced, not followed. A regular file
// at path keeps its owner and group when the caller may give them (root,
// or the owner), as an edit in place would: root signing a vendor's bundle
// must not leave it owned by root.
func Replace(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		// CreateTemp makes it 0600; Chmod, unlike a create, ignores the umask.
		err = tmp.Chmod(perm)
	}
	if st, serr := os.Lstat(path); err == nil && serr == nil && st.Mode().IsRegular() {
		if o, ok := st.Sys().(*syscall.Stat_t); ok && (int(o.Uid) != os.Geteuid() || int(o.Gid) != os.Getegid()) {
			// Anyone else may not give a file away; it becomes theirs.
			if cerr := tmp.Chown(int(o.Uid), int(o.Gid)); cerr != nil && !errors.Is(cerr, fs.ErrPermission) {
				err = cerr
			}
		}
	}
	if err == nil {
		// Without it the rename may reach the disk before the data does.
		err = tmp.Sync()
	}
	err = errors.Join(err, tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	// The rename is an entry in the directory; until the directory is
	// synced, a power cut may forget it.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
