package airlock

import (
	"errors"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces the file name with data so that a crash (of the
// plugin, the host, or a power cut once the data is synced) leaves either
// the old contents or the new, never a torn mix: it writes a temporary file
// beside name, syncs it to disk, and renames it over name, which is atomic.
// A file rewritten in place with os.WriteFile can be left half-written.
// The temporary file is removed if any step fails.
func WriteFileAtomic(name string, data []byte) (err error) {
	dir, base := filepath.Split(name)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), name); err != nil {
		return errors.Join(err, os.Remove(f.Name()))
	}
	return nil
}
