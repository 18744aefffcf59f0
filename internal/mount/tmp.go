package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
)

// TmpGuestPath is where a plugin with [storage] tmp sees its scratch space.
const TmpGuestPath = "/tmp"

// scratch is one load's /tmp: a tmpfs (root, real device) or a plain
// directory (the fallback). Each load of a plugin (a reload compiles the
// new version while the old runs) gets its own directory, so that two
// loads never share a mount point.
type scratch struct {
	plugin  string
	dir     string // host path: <state_dir>/tmp/<plugin>/<n>
	tmpfs   bool
	mounted bool // tmpfs still in the mount table
}

// preopenTmp gives the plugin its /tmp: a tmpfs of man.Tmp bytes with
// nosuid,nodev,noexec and mode 0700, or, where the host cannot mount
// (simulated device, not root), an unbounded directory, which the log says.
// Called with m.mu not held.
func (m *Mount) preopenTmp(man *manifest.Manifest) (capability.Preopen, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tmpLoads[man.Name]++
	dir := filepath.Join(m.tmpBase, man.StateName(), strconv.Itoa(m.tmpLoads[man.Name]))
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return capability.Preopen{}, fmt.Errorf("tmp directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return capability.Preopen{}, fmt.Errorf("tmp directory: %w", err)
	}
	s := &scratch{plugin: man.Name, dir: dir}
	why := "the simulated device has no mounts"
	if !m.sim {
		err := mountTmpfs(dir, uint64(man.Tmp))
		if err == nil {
			s.tmpfs, s.mounted = true, true
			m.log.Info("tmp mounted", "plugin", man.Name, "path", TmpGuestPath, "size", man.Tmp.String(), "options", "nosuid,nodev,noexec,mode=0700")
		} else if !errors.Is(err, errNoTmpfs) {
			os.Remove(dir)
			return capability.Preopen{}, fmt.Errorf("tmpfs for /tmp (%s): %w", man.Tmp, err)
		} else {
			why = err.Error()
		}
	}
	if !s.tmpfs {
		m.log.Warn("tmp is a plain directory: its size is not enforced", "plugin", man.Name, "path", TmpGuestPath, "size", man.Tmp.String(), "dir", dir, "why", why)
	}
	m.tmps = append(m.tmps, s)
	return capability.Preopen{GuestPath: TmpGuestPath, Dir: dir}, nil
}

// endTmp empties the plugin's /tmp and takes its tmpfs out of the mount
// table. The plugin's preopen holds the tmpfs open, so the unmount is lazy
// and a restarted instance goes on with the same (empty, still bounded)
// tmpfs; the kernel frees it when the plugin is unloaded. A fallback
// directory is emptied and kept, since the preopen holds it. Called with
// m.mu held.
func (m *Mount) endTmpLocked(plugin, why string) {
	for _, s := range m.tmps {
		if s.plugin != plugin && plugin != "" {
			continue
		}
		if s.tmpfs && !s.mounted {
			continue // detached earlier; no path reaches it now
		}
		if err := emptyDir(s.dir); err != nil {
			m.log.Warn("tmp not emptied", "plugin", s.plugin, "dir", s.dir, "error", err.Error())
		}
		if s.mounted {
			if _, err := m.unmountTmpfs(s.dir); err != nil {
				m.log.Error("tmp unmount failed", "plugin", s.plugin, "dir", s.dir, "error", err.Error())
				continue
			}
			s.mounted = false
			os.Remove(s.dir)
			m.log.Info("tmp unmounted", "plugin", s.plugin, "why", why)
		}
	}
}

func (m *Mount) unmountTmpfs(dir string) (bool, error) {
	if m.be == nil {
		return false, errors.New("no backend")
	}
	return m.be.unmount(dir, false)
}

// emptyDir removes what is in dir, never following a link out of it.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

// reconcileTmp clears what an earlier run left under the tmp base: it is
// scratch, so everything goes.
func (m *Mount) reconcileTmp() {
	if !m.sim {
		for _, msg := range unmountAllUnder(m.tmpBase) {
			m.log.Warn("leftover from an earlier run cleaned up", "detail", msg)
		}
	}
	if err := os.RemoveAll(m.tmpBase); err != nil {
		m.log.Warn("leftover tmp not removed", "dir", m.tmpBase, "error", err.Error())
	}
}
