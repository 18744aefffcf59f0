package sandboxfs

import (
	"io/fs"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// Nowhere returns the filesystem the host mounts at "/", after every real mount: it holds
// nothing, and every operation on it answers ENOENT. Without it, a guest's path under
// no mount ("/etc/passwd", or "/data/../b" once Go's runtime has cleaned it) reaches
// wazero with directory fd -1, because WASI libcs resolve paths against the preopens
// themselves, and wazero answers EBADF ("bad file number"), which tells the author
// nothing. With it, the longest preopen prefix of such a path is "/", and the guest
// reads "no such file or directory", as in a container that has nothing mounted there.
func Nowhere() experimentalsys.FS { return nowhere{} }

type nowhere struct {
	experimentalsys.UnimplementedFS
}

const absent = experimentalsys.ENOENT

// rootStat is "/" itself: an empty directory nobody can write. wazero opens a preopen's
// root (".") to resolve every path under it, so the root must exist.
var rootStat = sys.Stat_t{Mode: fs.ModeDir | 0o555, Nlink: 2}

func isRoot(name string) bool { return name == "." || name == "" || name == "/" }

func (nowhere) OpenFile(name string, flag experimentalsys.Oflag, _ fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	switch {
	case !isRoot(name):
		return nil, absent
	case writes(flag):
		return nil, experimentalsys.EISDIR
	}
	return emptyDir{}, 0
}

func (nowhere) Lstat(name string) (sys.Stat_t, experimentalsys.Errno) { return (nowhere{}).Stat(name) }
func (nowhere) Stat(name string) (sys.Stat_t, experimentalsys.Errno) {
	if isRoot(name) {
		return rootStat, 0
	}
	return sys.Stat_t{}, absent
}
func (nowhere) Readlink(string) (string, experimentalsys.Errno)    { return "", absent }
func (nowhere) Mkdir(string, fs.FileMode) experimentalsys.Errno    { return absent }
func (nowhere) Chmod(string, fs.FileMode) experimentalsys.Errno    { return absent }
func (nowhere) Rename(string, string) experimentalsys.Errno        { return absent }
func (nowhere) Rmdir(string) experimentalsys.Errno                 { return absent }
func (nowhere) Unlink(string) experimentalsys.Errno                { return absent }
func (nowhere) Link(string, string) experimentalsys.Errno          { return absent }
func (nowhere) Symlink(string, string) experimentalsys.Errno       { return absent }
func (nowhere) Utimens(string, int64, int64) experimentalsys.Errno { return absent }

// emptyDir is the open root of Nowhere.
type emptyDir struct {
	experimentalsys.UnimplementedFile
}

func (emptyDir) IsDir() (bool, experimentalsys.Errno)                          { return true, 0 }
func (emptyDir) Stat() (sys.Stat_t, experimentalsys.Errno)                     { return rootStat, 0 }
func (emptyDir) Readdir(int) ([]experimentalsys.Dirent, experimentalsys.Errno) { return nil, 0 }
func (emptyDir) Close() experimentalsys.Errno                                  { return 0 }

// writes reports whether opening with flag could change the tree or a file's content.
func writes(flag experimentalsys.Oflag) bool {
	acc := flag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY)
	return acc != experimentalsys.O_RDONLY ||
		flag&(experimentalsys.O_CREAT|experimentalsys.O_TRUNC|experimentalsys.O_APPEND) != 0
}
