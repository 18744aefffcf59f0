package mount

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// fuseProc is one running FUSE helper: the daemon that serves a mount.
type fuseProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited and been reaped
	out  *capped
}

// fuseReady bounds the wait for a helper's mount to appear (a liveness
// bound: a helper that hangs is killed).
const fuseReady = 30 * time.Second

// fuseExit bounds the wait for a helper to exit by itself after its
// mount was unmounted; then it is killed.
const fuseExit = 10 * time.Second

func lookupHelpers() map[string]string {
	out := map[string]string{}
	for name := range fuseHelpers {
		for _, dir := range helperPath {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				out[name] = p
				break
			}
		}
	}
	return out
}

func (b *realBackend) driver(fstype string) (driver, error) {
	info := fsTable[fstype]
	if info == nil {
		return driver{}, fmt.Errorf("unknown fstype %q", fstype)
	}
	k := fstype
	if info.kernel != "" {
		k = info.kernel
	}
	if kernelHas(k) {
		return driver{fstype: k}, nil
	}
	h := fuseHelpers[info.fuse]
	if h == nil {
		return driver{}, fmt.Errorf("this kernel cannot mount %s (%s is not in /proc/filesystems)", fstype, k)
	}
	if !kernelHas("fuse") && !kernelHas("fuseblk") {
		return driver{}, fmt.Errorf("this kernel cannot mount %s (%s is not in /proc/filesystems), nor FUSE (load the fuse module)", fstype, k)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return driver{}, fmt.Errorf("this kernel cannot mount %s (%s is not in /proc/filesystems), and FUSE needs /dev/fuse: %v (in a container, pass the device in)", fstype, k, err)
	}
	p := b.helpers[h.name]
	if p == "" {
		return driver{}, fmt.Errorf("this kernel cannot mount %s (%s is not in /proc/filesystems), and its FUSE helper %s is not installed in %s (install the Debian package %s)",
			fstype, k, h.name, strings.Join(helperPath, ":"), h.pkg)
	}
	return driver{fstype: fstype, helper: h, path: p}, nil
}

// fuseMount runs drv's helper to mount src on the directory fd (the one
// mount opened without following links), at path. The helper is handed
// that directory as its fd 3 and mounts /proc/self/fd/3. Then the host
// sets the per-mount flags itself (a helper may drop noexec:
// mount.exfat-fuse does), and checks in the mount table that the mount
// at path is a new FUSE mount with nosuid,nodev,noexec (and ro if asked);
// if not, it is undone and refused.
func (b *realBackend) fuseMount(drv driver, p plan, src string, fd int, path string) error {
	h := drv.helper
	if h.fsname && strings.ContainsAny(src, ",\\") {
		return fmt.Errorf("device node %s has a comma or backslash, which %s cannot take in fsname", src, h.name)
	}
	before, err := mountIDs()
	if err != nil {
		return err
	}
	dfd, err := unix.Dup(fd)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(dfd), path)
	defer dir.Close()
	cmd := exec.Command(drv.path, fuseArgs(h, p, src, "/proc/self/fd/3")...)
	cmd.ExtraFiles = []*os.File{dir}
	cmd.Env = []string{"PATH=" + strings.Join(helperPath, ":"), "LANG=C"}
	out := &capped{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a Ctrl-C to the host's group must not take
	// the daemon away before the host unmounts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", h.name, err)
	}
	fp := &fuseProc{cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		cmd.Wait()
		close(fp.done)
		b.fuseMu.Lock()
		for k, v := range b.fuse {
			if v == fp {
				delete(b.fuse, k)
			}
		}
		b.fuseMu.Unlock()
	}()
	undo := func(err error) error {
		b.undoFuse(fp, src, before, path)
		return err
	}
	var mi *mountinfo.Info
	for deadline := time.Now().Add(fuseReady); mi == nil; {
		select {
		case <-fp.done:
			return undo(fmt.Errorf("%s (%s) did not mount: %v: %s", h.name, strings.Join(cmd.Args, " "), cmd.ProcessState, strings.TrimSpace(out.String())))
		case <-time.After(10 * time.Millisecond):
		}
		ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(path))
		if err != nil {
			return undo(err)
		}
		if len(ms) > 0 && !before[ms[len(ms)-1].ID] {
			mi = ms[len(ms)-1]
		}
		if mi == nil && time.Now().After(deadline) {
			return undo(fmt.Errorf("%s did not mount within %v: %s", h.name, fuseReady, out.String()))
		}
	}
	perMount := p.flags & (msRdonly | msNosuid | msNodev | msNoexec | msNoatime | msNodiratime | msRelatime)
	if err := unix.Mount("", path, "", unix.MS_REMOUNT|unix.MS_BIND|perMount, ""); err != nil {
		return undo(fmt.Errorf("setting nosuid,nodev,noexec on the %s mount: %w", h.name, err))
	}
	if why := checkFuseMount(path, before, p.ro); why != "" {
		return undo(fmt.Errorf("refused the %s mount: %s", h.name, why))
	}
	if !p.ro && mountedRO(path) {
		// exfat-fuse and ntfs-3g fall back to read-only by themselves
		// (a write-protected or unclean medium): undone, so that the
		// capability retries read-only and says so in the note.
		return undo(fmt.Errorf("%s mounted read-only when asked read-write: %w", h.name, unix.EROFS))
	}
	b.fuseMu.Lock()
	b.fuse[path] = fp
	b.fuseMu.Unlock()
	return nil
}

// checkFuseMount says what is wrong with the mount at path ("" if
// nothing): it must be a FUSE mount made after before, with the forced
// options in effect.
func checkFuseMount(path string, before map[int]bool, ro bool) string {
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(path))
	if err != nil {
		return "reading the mount table: " + err.Error()
	}
	if len(ms) == 0 {
		return "nothing is mounted at " + path
	}
	mi := ms[len(ms)-1] // the top one
	if before[mi.ID] || !isFuse(mi.FSType) {
		return fmt.Sprintf("the mount at %s is %s, not the helper's", path, mi.FSType)
	}
	want := []string{"nosuid", "nodev", "noexec"}
	if ro {
		want = append(want, "ro")
	}
	opts := strings.Split(mi.Options, ",")
	for _, w := range want {
		if !contains(opts, w) {
			return fmt.Sprintf("the mount at %s has %s, without %s", path, mi.Options, w)
		}
	}
	return ""
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

// isFuse: FUSE mounts show as fuseblk, fuse or fuse.NAME in mountinfo.
func isFuse(fstype string) bool {
	return fstype == "fuse" || fstype == "fuseblk" || strings.HasPrefix(fstype, "fuse.")
}

// mountIDs returns the ids of the mounts in the table now.
func mountIDs() (map[int]bool, error) {
	ms, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	out := make(map[int]bool, len(ms))
	for _, mi := range ms {
		out[mi.ID] = true
	}
	return out, nil
}

// undoFuse ends a helper whose mount is refused or never came: any
// FUSE mount of src made since before (at path, or elsewhere if the
// directory was swapped under the helper) is detached, and the helper
// killed and reaped.
func (b *realBackend) undoFuse(fp *fuseProc, src string, before map[int]bool, path string) {
	if ms, err := mountinfo.GetMounts(nil); err == nil {
		for _, mi := range ms {
			if !before[mi.ID] && isFuse(mi.FSType) && (mi.Source == src || mi.Mountpoint == path) {
				unix.Unmount(mi.Mountpoint, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
			}
		}
	}
	fp.cmd.Process.Kill()
	<-fp.done
}

// endFuse ends the helper of the mount at path once it is unmounted. A
// clean unmount lets it exit by itself (it flushes what it holds); a
// device that is gone gets it killed at once, so that no open file keeps
// a daemon for a dead device; a busy mount detached lazily keeps it until
// the last file is closed, when it exits by itself and is reaped (and at
// host shutdown it is killed).
func (b *realBackend) endFuse(path string, gone, lazy bool) {
	b.fuseMu.Lock()
	fp := b.fuse[path]
	delete(b.fuse, path)
	if fp != nil && lazy && !gone {
		// Kept for close, under a name no mount point has.
		b.fuse[fmt.Sprintf("%s (detached, pid %d)", path, fp.cmd.Process.Pid)] = fp
	}
	b.fuseMu.Unlock()
	switch {
	case fp == nil:
	case gone:
		fp.cmd.Process.Kill()
		<-fp.done
	case !lazy:
		select {
		case <-fp.done:
		case <-time.After(fuseExit):
			fp.cmd.Process.Kill()
			<-fp.done
		}
	}
}

// close kills the helpers still running (the capability has unmounted
// their mounts; a lazily detached one may still hold a file open).
func (b *realBackend) close() {
	b.fuseMu.Lock()
	var ps []*fuseProc
	for k, fp := range b.fuse {
		ps = append(ps, fp)
		delete(b.fuse, k)
	}
	b.fuseMu.Unlock()
	for _, fp := range ps {
		fp.cmd.Process.Kill()
		<-fp.done
	}
}

// mountedRO reports whether the top mount at path is read-only, per
// mount or in its superblock.
func mountedRO(path string) bool {
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(path))
	if err != nil || len(ms) == 0 {
		return false
	}
	mi := ms[len(ms)-1]
	return contains(strings.Split(mi.Options, ","), "ro") || contains(strings.Split(mi.VFSOptions, ","), "ro")
}

// capped keeps the first max bytes written to it and drops the rest (a
// helper in the foreground may log every request).
type capped struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.max - len(c.b); n > 0 {
		c.b = append(c.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.b)
}
