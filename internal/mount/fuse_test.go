package mount_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/mountinfo"

	"github.com/airlockhq/airlock/internal/testenv"
)

// fuseDriver is the driver the host must pick for fstype here: the
// kernel's when /proc/filesystems has it, else the FUSE helper.
func fuseDriver(fstype string) string {
	k, helper := fstype, map[string]string{"vfat": "fusefat", "exfat": "mount.exfat-fuse", "ntfs": "ntfs-3g"}[fstype]
	if fstype == "ntfs" {
		k = "ntfs3"
	}
	if kernelHas(k) {
		return "kernel"
	}
	return "fuse:" + helper
}

// helperProcs lists the processes whose command line names one of dev's
// partitions (only this test's loop device is looked at).
func helperProcs(t *testing.T, dev string) []string {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []string
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, "/"+dev+"p") && (strings.Contains(cmd, "fuse") || strings.Contains(cmd, "ntfs-3g")) {
			out = append(out, filepath.Base(filepath.Dir(p))+": "+cmd)
		}
	}
	return out
}

// A vfat, an exfat and an NTFS stick on a real loop device, mounted
// through their FUSE helpers where the kernel lacks the driver (and
// through the kernel where it has it): each is written to and read back,
// the mount table shows nosuid,nodev,noexec on every one (mount.exfat-fuse
// drops noexec by itself; the host sets it), the files belong to the host
// with no access for others, `list` and the audit say which driver was
// used, and pulling the stick (losetup -d) leaves no mount and no helper
// process behind. A write-protected exfat and NTFS partition fall back
// to read-only, as kernel mounts do.
func TestLoopFuse(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices and mount them")
	blockdev := testenv.NeedCommand(t, "blockdev", "util-linux")
	for _, fs := range []string{"vfat", "exfat", "ntfs"} {
		if d := fuseDriver(fs); d != "kernel" {
			testenv.NeedCommand(t, strings.TrimPrefix(d, "fuse:"), map[string]string{"vfat": "fusefat", "exfat": "exfat-fuse", "ntfs": "ntfs-3g"}[fs])
		}
	}
	dir := t.TempDir()
	parts := []testenv.Partition{
		{Sfdisk: ",20M,c", FSType: "vfat", Label: "AIRFV"},
		{Sfdisk: ",20M,7", FSType: "exfat", Label: "AIRFE"},
		{Sfdisk: ",,7", FSType: "ntfs", Label: "AIRFN"},
	}
	img := tl.MakeSizedImage(t, dir, "fuse.img", 96<<20, parts)
	roParts := []testenv.Partition{
		{Sfdisk: ",20M,7", FSType: "exfat", Label: "AIRFROE"},
		{Sfdisk: ",,7", FSType: "ntfs", Label: "AIRFRON"},
	}
	roImg := tl.MakeSizedImage(t, dir, "fusero.img", 64<<20, roParts)

	trigger := "[[trigger.udev]]\nsubsystem = \"block\"\ndevtype = \"partition\"\naction = \"add\"\nproperties = { ID_FS_LABEL = \"AIRF*\" }\n"
	grant := "[[mount]]\nsource = [\"label:AIRF*\"]\nfstype = [\"vfat\", \"exfat\", \"ntfs\"]\noptions = [\"sync\"]\n" + trigger
	config := ""
	for _, p := range parts {
		config += fmt.Sprintf("add_%s = \"mount label:%[1]s; write /media/%[1]s/f.txt hello-%[1]s; read /media/%[1]s/f.txt; list\"\n", p.Label)
	}
	// Write-protected before the host starts, so that the first mount
	// already sees it.
	roDev := tl.Attach(t, roImg, len(roParts))
	start := ""
	for i, p := range roParts {
		testenv.Run(t, blockdev, "--setro", fmt.Sprintf("/dev/%sp%d", roDev, i+1))
		start += fmt.Sprintf("mount label:%s; write /media/%[1]s/f.txt x; ", p.Label)
	}
	config += fmt.Sprintf("start = %q\n", start)
	r := runHost(t, realRuntime, plugin{"g", guestManifest("g", grant, config), guest})
	r.log.Wait(1, "airlock running")
	media := r.media("g")

	// Write-protected: the read-write mount is refused (fusefat would
	// take it and fail every write; the others fall back by themselves),
	// the read-only retry works and says why, and writes fail.
	for _, p := range roParts {
		r.log.Wait(1, "mount label:"+p.Label+" ok target="+p.Label, "readonly=true", "driver="+fuseDriver(p.FSType),
			`note="mounted read-only: a read-write mount failed`, "plugin=g")
		r.log.Wait(1, "write /media/"+p.Label+"/f.txt x err=open /media/"+p.Label+"/f.txt: Read-only file system", "plugin=g")
	}

	dev := tl.Attach(t, img, len(parts))
	for i, p := range parts {
		drv := fuseDriver(p.FSType)
		r.log.Wait(1, fmt.Sprintf("mount label:%s ok target=%[1]s path=/media/%[1]s device=/dev/%sp%d readonly=false", p.Label, dev, i+1), "driver="+drv, "plugin=g")
		r.log.Wait(1, fmt.Sprintf("read /media/%s/f.txt = %q", p.Label, "hello-"+p.Label), "plugin=g")
		if n := r.audit.Count("plugin=g", "capability=mount", "decision=allow", "label:"+p.Label, "driver="+drv); n != 1 {
			t.Errorf("%d allow records for %s with driver=%s, want 1:\n%s", n, p.Label, drv, strings.Join(r.audit.Lines(), "\n"))
		}
		fi, err := os.Stat(filepath.Join(media, p.Label, "f.txt"))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o007 != 0 {
			t.Errorf("%s/f.txt: uid %d mode %v, want the host's uid %d and no access for others", p.Label, st.Uid, fi.Mode().Perm(), os.Getuid())
		}
	}
	r.log.Wait(1, "list n=5 targets=AIRFE,AIRFN,AIRFROE,AIRFRON,AIRFV drivers="+
		strings.Join([]string{fuseDriver("exfat"), fuseDriver("ntfs"), fuseDriver("exfat"), fuseDriver("ntfs"), fuseDriver("vfat")}, ","), "plugin=g")
	ms := slices.DeleteFunc(mountsUnder(t, media), func(m *mountinfo.Info) bool { return strings.HasPrefix(filepath.Base(m.Mountpoint), "AIRFRO") })
	if len(ms) != len(parts) {
		t.Fatalf("%d mounts under %s, want %d", len(ms), media, len(parts))
	}
	fuse := 0
	for _, m := range ms {
		for _, o := range []string{"nosuid", "nodev", "noexec"} {
			if !slices.Contains(strings.Split(m.Options, ","), o) {
				t.Errorf("%s (%s) is mounted with %q, without %s", m.Mountpoint, m.FSType, m.Options, o)
			}
		}
		if m.FSType == "fuse" || m.FSType == "fuseblk" || strings.HasPrefix(m.FSType, "fuse.") {
			fuse++
		}
	}
	want := 0
	for _, p := range parts {
		if fuseDriver(p.FSType) != "kernel" {
			want++
		}
	}
	if fuse != want {
		t.Errorf("%d FUSE mounts, want %d", fuse, want)
		for _, m := range ms {
			t.Logf("%s %s %s", m.Mountpoint, m.FSType, m.Source)
		}
	}
	if procs := helperProcs(t, dev); len(procs) != want {
		t.Errorf("%d FUSE helpers for /dev/%s, want %d:\n%s", len(procs), dev, want, strings.Join(procs, "\n"))
	}

	// Pulled out: every mount is detached, every helper killed and
	// reaped, and the kernel then lets the loop device go (nothing holds
	// it open any more).
	testenv.Run(t, tl.Losetup, "-d", "/dev/"+dev)
	for _, p := range parts {
		r.log.Wait(1, "mount-event action=unmounted target="+p.Label+" ", "plugin=g")
	}
	if procs := helperProcs(t, dev); len(procs) != 0 {
		t.Errorf("FUSE helpers left after the yank:\n%s", strings.Join(procs, "\n"))
	}
	testenv.WaitPath(t, "/sys/class/block/"+dev+"p1", false)
	for _, m := range mountsUnder(t, media) {
		if !strings.HasPrefix(filepath.Base(m.Mountpoint), "AIRFRO") {
			t.Errorf("left mounted after the yank: %s", m.Mountpoint)
		}
	}
	for _, p := range parts {
		if _, err := os.Stat(filepath.Join(media, p.Label)); !os.IsNotExist(err) {
			t.Errorf("stale mount point %s: %v", p.Label, err)
		}
	}

	r.stop()
	if ms := mountsUnder(t, media); len(ms) != 0 {
		t.Errorf("%d mounts left after host shutdown", len(ms))
	}
	if procs := helperProcs(t, roDev); len(procs) != 0 {
		t.Errorf("FUSE helpers left after host shutdown:\n%s", strings.Join(procs, "\n"))
	}
}
