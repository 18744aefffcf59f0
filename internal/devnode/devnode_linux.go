package devnode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/airlockhq/airlock/internal/statedir"
)

// Path returns a path naming block device major:minor (kernel name name,
// such as "sdb1"), and a release func to call once the path is no longer
// needed (after open, or after mount(2)): it removes the node if Path made
// one. The error says what could not be made, and where.
func (n *Nodes) Path(name string, major, minor uint32) (string, func(), error) {
	want := unix.Mkdev(major, minor)
	if n.DevDir != "" && name != "" && !strings.Contains(name, "..") {
		p := filepath.Join(n.DevDir, name)
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == want {
			return p, func() {}, nil
		}
	}
	if err := statedir.Make(n.Dir); err != nil {
		return "", nil, fmt.Errorf("device node for %s (%d:%d): %w", name, major, minor, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(n.Dir, &fs); err == nil && fs.Flags&unix.ST_NODEV != 0 {
		return "", nil, fmt.Errorf("device node for %s (%d:%d): %s is on a file system mounted nodev, where device nodes cannot be opened (put state_dir on another one)", name, major, minor, n.Dir)
	}
	base := strings.ReplaceAll(name, "/", "!")
	if base == "" {
		base = "dev"
	}
	p := filepath.Join(n.Dir, fmt.Sprintf("%s.%d.%d", base, os.Getpid(), seq.Add(1)))
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(want)); err != nil {
		return "", nil, fmt.Errorf("device node for %s (%d:%d): mknod %s: %w (the host needs CAP_MKNOD, and a device cgroup rule that allows block devices, such as --device-cgroup-rule 'b *:* rmw')", name, major, minor, p, err)
	}
	return p, func() { os.Remove(p) }, nil
}

// Clean removes the nodes an earlier run left in Dir (a crash between
// Path and release). Call it at start, before any Path.
func (n *Nodes) Clean() error {
	entries, err := os.ReadDir(n.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Type()&os.ModeDevice != 0 {
			errs = append(errs, os.Remove(filepath.Join(n.Dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}
