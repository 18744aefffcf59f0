// Package statedir makes the directories the host writes (state_dir, and
// the directory of a socket or file the config places elsewhere) on
// demand, with mode 0700, so that a device's first boot on an empty /data
// volume starts; and it refuses a state directory that someone else could
// plant files in, since the compilation cache under it holds native code.
package statedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Mode is the mode of every directory the host creates for itself.
const Mode = 0o700

// Ensure makes dir and its missing parents with Mode, and checks that the
// result is a directory this process owns (or root does) and that no other
// user may write to. Its errors name dir and say what to do.
func Ensure(dir string) error {
	if err := Make(dir); err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if why := OthersMayWrite(st); why != "" {
		return fmt.Errorf("%s %s: another user could plant files in it (chown or chmod go-w %s, or pick another directory)", dir, why, dir)
	}
	return nil
}

// Make makes dir and its missing parents with Mode; a directory that is
// already there is left as it is. Its error names dir, and the part of it
// that could not be made.
func Make(dir string) error {
	err := os.MkdirAll(dir, Mode)
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	why := err.Error()
	if errors.As(err, &pe) {
		why = fmt.Sprintf("%s %s: %v", pe.Op, pe.Path, pe.Err)
		if errors.Is(pe.Err, syscall.ENOTDIR) || errors.Is(pe.Err, syscall.EEXIST) {
			why += " (a file that is not a directory is in the way)"
		}
	}
	return fmt.Errorf("cannot create %s: %s", dir, why)
}

// OthersMayWrite says why a user other than this process's (or root) may
// have written the file or directory st describes: "is owned by uid N, not
// by this host (uid M) or root" or "has mode 0777"; "" if none may.
func OthersMayWrite(st fs.FileInfo) string {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if uid := uint32(os.Geteuid()); sys.Uid != uid && sys.Uid != 0 {
			return fmt.Sprintf("is owned by uid %d, not by this host (uid %d) or root", sys.Uid, uid)
		}
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Sprintf("has mode %04o", perm)
	}
	return ""
}
