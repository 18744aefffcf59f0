package mount_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/airlockhq/airlock/internal/testenv"
)

// realRuntime runs the real backend, with loop devices given out: each
// test's plugins take only devices with its own labels (AIR*), and
// TestLoopDisksPolicy shows what the default gives out.
const realRuntime = kernelRuntime + "[mount]\ndisks = [\"removable\", \"loop\"]\n"

const kernelRuntime = "device = \"real\"\n[udev]\nsource = \"kernel\"\n"

// mountsUnder returns the mount table's entries below dir.
func mountsUnder(t *testing.T, dir string) []*mountinfo.Info {
	t.Helper()
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(ms, func(m *mountinfo.Info) bool { return m.Mountpoint == dir })
}

func kernelHas(fstype string) bool {
	b, _ := os.ReadFile("/proc/filesystems")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == fstype {
			return true
		}
	}
	return false
}

// labelEntry is 1 where a fresh filesystem shows an entry: fusefat lists
// a vfat volume label as an empty file (the kernel's vfat hides it).
func labelEntry(fstype string) int {
	if fstype == "vfat" && !kernelHas("vfat") {
		return 1
	}
	return 0
}

func labels(parts []testenv.Partition) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p.Label)
	}
	return out
}

// The shipped automount plugin on real loop devices, through real kernel
// uevents: two ext4 partitions with the same label are mounted as AIRSTICK
// and AIRSTICK-2 with nosuid,nodev,noexec, the plugin writes a file
// through its /media preopen, the device is detached under it (lazy
// unmount, the plugin told, no stale mount point), and the file is on the
// stick when it comes back. A vfat partition (through fusefat where the
// kernel lacks vfat), an xfs and a btrfs one of the same image (logical
// partitions 5 and 6) go through the same cycle where the kernel has them,
// and xfs and btrfs give the readable unavailable error where it has not.
func TestLoopAutomount(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices and mount them")
	parts := []testenv.Partition{
		{Sfdisk: ",20M,83", FSType: "ext4", Label: "AIRSTICK"},
		{Sfdisk: ",20M,83", FSType: "ext4", Label: "AIRSTICK"},
		{Sfdisk: ",16M,c", FSType: "vfat", Label: "AIRV"},
		{Sfdisk: ",,E"},
		{Sfdisk: ",300M,83", FSType: "xfs", Label: "AIRXFS"},
		{Sfdisk: ",,83", FSType: "btrfs", Label: "AIRBTRFS"},
	}
	// Sparse: mkfs writes about 70 MiB of it.
	img := tl.MakeSizedImage(t, t.TempDir(), "stick.img", 512<<20, parts)
	if !kernelHas("vfat") {
		testenv.NeedCommand(t, "fusefat", "fusefat")
	}
	r := runHost(t, realRuntime, plugin{"automount", automountManifest(t, "AIR*"), "plugins/automount"})
	r.log.Wait(1, "airlock running")

	// The partitions beyond the two ext4 ones that the kernel can mount
	// here: they are written to and come back like AIRSTICK.
	var cycled []testenv.Partition
	dev := tl.Attach(t, img, len(parts))
	r.log.Wait(1, "mounted device=/dev/"+dev+"p1 path=/media/AIRSTICK fstype=ext4 readonly=false entries=1", "plugin=automount")
	r.log.Wait(1, "mounted device=/dev/"+dev+"p2 path=/media/AIRSTICK-2 fstype=ext4 readonly=false", "plugin=automount")
	r.log.Wait(1, "wrote path=/media/AIRSTICK/hello.txt", "plugin=automount")
	for i, p := range parts[2:] {
		mounted := fmt.Sprintf("mounted device=/dev/%sp%d path=/media/%s fstype=%s readonly=false", dev, i+3, p.Label, p.FSType)
		switch {
		case p.FSType == "": // the extended partition
		case !kernelHas(p.FSType) && p.FSType != "vfat": // vfat has a FUSE helper
			r.log.Wait(1, "unavailable: plugin \"automount\": mount uuid:"+p.UUID+": this kernel cannot mount "+p.FSType, "plugin=automount")
		default: // vfat, xfs and btrfs start empty
			r.log.Wait(1, fmt.Sprintf("%s entries=%d", mounted, labelEntry(p.FSType)), "plugin=automount")
			r.log.Wait(1, "wrote path=/media/"+p.Label+"/hello.txt", "plugin=automount")
			cycled = append(cycled, p)
		}
	}
	media := r.media("automount")
	ms := mountsUnder(t, media)
	if len(ms) < 2+len(cycled) {
		t.Fatalf("mounts under %s: %d, want %d or more", media, len(ms), 2+len(cycled))
	}
	for _, p := range cycled {
		at := filepath.Join(media, p.Label)
		want := p.FSType
		if !kernelHas(p.FSType) {
			want = "fuse" // vfat through fusefat (TestLoopFuse)
		}
		if i := slices.IndexFunc(ms, func(m *mountinfo.Info) bool { return m.Mountpoint == at }); i < 0 || ms[i].FSType != want {
			t.Errorf("%s is not a %s mount in the mount table", at, want)
		}
	}
	// The host asks the same flags for every type (buildPlan), and the
	// kernel enforces them per mount in the VFS, whatever the filesystem:
	// so the mount table here is checked for each type, and what the
	// flags do is shown once, on ext4, by TestLoopSuidStick.
	for _, m := range ms {
		for _, o := range []string{"nosuid", "nodev", "noexec"} {
			if !slices.Contains(strings.Split(m.Options, ","), o) {
				t.Errorf("%s (%s) is mounted with %q, without %s", m.Mountpoint, m.FSType, m.Options, o)
			}
		}
	}

	// Pulled out: losetup -d on a device in use only marks it; the host
	// notices, detaches the mounts, and the kernel then removes it.
	pulled := dev
	testenv.Run(t, tl.Losetup, "-d", "/dev/"+dev)
	gone := append([]string{"AIRSTICK", "AIRSTICK-2"}, labels(cycled)...)
	for _, n := range gone {
		r.log.Wait(1, "pulled out while mounted", "target="+n+" ", "plugin=automount")
	}
	testenv.WaitPath(t, "/sys/class/block/"+dev+"p1", false)
	// Only this test's sticks: another test's AIR* loop device on the
	// same machine may be mounted too.
	for _, m := range mountsUnder(t, media) {
		if slices.Contains(gone, filepath.Base(m.Mountpoint)) {
			t.Errorf("left mounted after the device was detached: %s (%s)", m.Mountpoint, m.FSType)
		}
	}
	for _, n := range gone {
		if _, err := os.Stat(filepath.Join(media, n)); !os.IsNotExist(err) {
			t.Errorf("stale mount point %s: %v", n, err)
		}
	}

	// Plugged in again: mounted again, and the file written before is there.
	dev = tl.Attach(t, img, len(parts))
	// entries counts lost+found and hello.txt, before the plugin writes.
	r.log.Wait(1, "mounted device=/dev/"+dev+"p1 path=/media/AIRSTICK fstype=ext4 readonly=false entries=2", "plugin=automount")
	r.log.Wait(2, "wrote path=/media/AIRSTICK/hello.txt", "plugin=automount")
	for _, p := range cycled {
		r.log.Wait(1, fmt.Sprintf("path=/media/%s fstype=%s readonly=false entries=%d", p.Label, p.FSType, 1+labelEntry(p.FSType)), "plugin=automount")
		r.log.Wait(2, "wrote path=/media/"+p.Label+"/hello.txt", "plugin=automount")
	}
	// Each pulled stick was logged once: the host's mount event and the
	// partition's udev remove, both handled before the add above, name
	// the same stick.
	for _, n := range gone {
		if c := r.log.Count("pulled out while mounted", "target="+n+" ", "plugin=automount"); c != 1 {
			t.Errorf("%s pulled out: logged %d times, want once", n, c)
		}
	}
	if c := r.log.Count("unmounted device=/dev/"+pulled+"p", "plugin=automount"); c != 0 {
		t.Errorf("the pulled sticks were also logged as unmounted %d times:\n%s", c, strings.Join(r.log.Lines(), "\n"))
	}
	for _, n := range append([]string{"AIRSTICK"}, labels(cycled)...) {
		b, err := os.ReadFile(filepath.Join(media, n, "hello.txt"))
		if err != nil || !strings.Contains(string(b), "automount") {
			t.Errorf("%s/hello.txt after re-attaching: %q, %v", n, b, err)
		}
	}
	r.stop()
	if ms := mountsUnder(t, media); len(ms) != 0 {
		t.Errorf("%d mounts left after host shutdown", len(ms))
	}
}

// automountManifest is the shipped automount manifest with write_file set
// and every rule that matches a filesystem narrowed to labels (a glob),
// so that the test leaves the machine's other disks alone.
func automountManifest(t *testing.T, labels string) string {
	t.Helper()
	man, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "plugins/automount/plugin.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(man), `write_file = ""`, `write_file = "hello.txt"`, 1)
	const fsRule = `properties = { ID_FS_TYPE = "vfat|`
	if strings.Count(text, fsRule) < 2 {
		t.Fatalf("plugins/automount/plugin.toml has fewer than two rules with %s...} (add, and a whole disk's change) to add the label filter to:\n%s", fsRule, man)
	}
	return strings.ReplaceAll(text, fsRule, `properties = { ID_FS_LABEL = "`+labels+`", ID_FS_TYPE = "vfat|`)
}

// A whole-disk ("superfloppy") stick, a filesystem with no partition
// table, through the shipped automount plugin on a real loop device: the
// kernel announces it with a change of the disk, not an add. It is mounted
// when attached; pulled out (losetup -d) it is logged once although the
// host's mount event and the disk's change both report it; attached again
// it is mounted again with the file written before; and when its medium
// goes while mounted (the disk shrinks under the filesystem, a change the
// probe finds no filesystem in, as a card taken out of a reader) the
// plugin unmounts it itself, and logs that once too. The stick is ext4,
// whatever the kernel has: the medium's going is made by shrinking the
// disk to one sector, which leaves ext4's superblock (at 1 KiB) out of the
// probe's reach, where a vfat boot sector would stay in it.
func TestLoopSuperfloppy(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices and mount them")
	fstype, entries := "ext4", 1 // lost+found
	img, _ := tl.MakeSuperfloppy(t, t.TempDir(), "floppy.img", 32<<20, fstype, "AIRFLOPPY")
	r := runHost(t, realRuntime, plugin{"automount", automountManifest(t, "AIRFLOPPY"), "plugins/automount"})
	r.log.Wait(1, "airlock running")

	dev := tl.Attach(t, img, 0)
	mounted := func(dev string, entries int) string {
		return fmt.Sprintf("mounted device=/dev/%s path=/media/AIRFLOPPY fstype=%s readonly=false entries=%d", dev, fstype, entries)
	}
	r.log.Wait(1, mounted(dev, entries), "plugin=automount")
	r.log.Wait(1, "wrote path=/media/AIRFLOPPY/hello.txt", "plugin=automount")
	at := filepath.Join(r.media("automount"), "AIRFLOPPY")
	if ms := mountsUnder(t, r.media("automount")); len(ms) != 1 || ms[0].Mountpoint != at || ms[0].Source != "/dev/"+dev {
		t.Fatalf("mount table under the media root: %+v, want /dev/%s at %s", ms, dev, at)
	}

	// Pulled out: the host detaches it, then the kernel frees the loop
	// device with a change that has no filesystem.
	testenv.Run(t, tl.Losetup, "-d", "/dev/"+dev)
	r.log.Wait(1, "pulled out while mounted", "target=AIRFLOPPY ", "plugin=automount")
	testenv.WaitPath(t, "/sys/class/block/"+dev+"/loop", false)

	// Attached again: both reports of the pull were handled before this
	// mount, and they logged the stick once.
	dev2 := tl.Attach(t, img, 0)
	r.log.Wait(1, mounted(dev2, entries+1), "plugin=automount")
	r.log.Wait(2, "wrote path=/media/AIRFLOPPY/hello.txt", "plugin=automount")
	if c := r.log.Count("pulled out while mounted", "target=AIRFLOPPY ", "plugin=automount"); c != 1 {
		t.Errorf("one pull logged %d times, want once:\n%s", c, strings.Join(r.log.Lines(), "\n"))
	}
	if c := r.log.Count("unmounted device=", "plugin=automount"); c != 0 {
		t.Errorf("the pulled stick was also logged as unmounted (%d):\n%s", c, strings.Join(r.log.Lines(), "\n"))
	}
	if b, err := os.ReadFile(filepath.Join(at, "hello.txt")); err != nil || !strings.Contains(string(b), "automount") {
		t.Errorf("hello.txt after re-attaching: %q, %v", b, err)
	}

	// The medium goes while mounted: the disk shrinks to one sector
	// under the filesystem (the loop device's size limit; the kernel
	// sends no event for a change to zero), a change whose probe finds no
	// filesystem. The host still has the device, so the plugin's own
	// unmount does it, and logs it once.
	shrinkLoop(t, "/dev/"+dev2, 512)
	r.log.Wait(2, "pulled out while mounted", "target=AIRFLOPPY ", "plugin=automount")
	if ms := mountsUnder(t, r.media("automount")); len(ms) != 0 {
		t.Errorf("still mounted after the medium went: %+v\n%s", ms[0], strings.Join(r.log.Lines(), "\n"))
	}
	r.stop()
	if c := r.log.Count("pulled out while mounted", "plugin=automount"); c != 2 {
		t.Errorf("two pulls logged %d times, want twice:\n%s", c, strings.Join(r.log.Lines(), "\n"))
	}
	r.stop()
}

// shrinkLoop sets a loop device's size limit to size bytes, as a medium
// that goes: the kernel sends a change with RESIZE=1 (losetup cannot
// change the limit of an attached device).
func shrinkLoop(t *testing.T, dev string, size uint64) {
	t.Helper()
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	info, err := unix.IoctlLoopGetStatus64(fd)
	if err != nil {
		t.Fatalf("LOOP_GET_STATUS64 %s: %v", dev, err)
	}
	info.Sizelimit = size
	if err := unix.IoctlLoopSetStatus64(fd, info); err != nil {
		t.Fatalf("LOOP_SET_STATUS64 %s (size limit %d): %v", dev, size, err)
	}
}

// Denials, a yanked device with a file open, a crash with a mount held,
// and host shutdown, on real loop devices through the test guest.
func TestLoopGuest(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices and mount them")
	dir := t.TempDir()
	sParts := []testenv.Partition{
		{Sfdisk: ",20M,83", FSType: "ext4", Label: "AIRS1"},
		{Sfdisk: ",20M,83", FSType: "ext4", Label: "AIRS2"},
		{Sfdisk: ",,c", FSType: "vfat", Label: "AIRSV"},
	}
	sImg := tl.MakeImage(t, dir, "s.img", sParts)
	if !kernelHas("vfat") {
		testenv.NeedCommand(t, "fusefat", "fusefat")
	}
	yParts := []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "AIRY"}}
	yImg := tl.MakeImage(t, dir, "y.img", yParts)

	rootDev := ""
	if ms, _ := mountinfo.GetMounts(mountinfo.SingleEntryFilter("/")); len(ms) == 1 && ms[0].Major != 0 && strings.HasPrefix(ms[0].Source, "/dev/") {
		rootDev = ms[0].Source
	}
	trigger := "[[trigger.udev]]\nsubsystem = \"block\"\ndevtype = \"partition\"\naction = \"add\"\nproperties = { ID_FS_LABEL = \"AIR*\" }\n"
	gGrant := "[[mount]]\nsource = [\"label:AIRS1\", \"label:AIRSV\", \"label:AIRY\", \"device:/dev/vd*\", \"device:/dev/sd*\"]\nfstype = [\"ext4\", \"vfat\"]\noptions = [\"sync\"]\n" + trigger
	s1 := []string{
		"unmount foreign",
		"mount label:AIRS1 fstype=vfat",
		"mount label:AIRS1 opt=uid=3",
		"mount label:AIRS1 target=link",
		"mount label:AIRS1 target=..",
		"mount label:AIRS1 opt=sync",
		"write /media/AIRS1/f.txt hi",
		"read /media/AIRS1/f.txt",
	}
	if rootDev != "" {
		s1 = append(s1, "mount device:"+rootDev)
	}
	gConfig := fmt.Sprintf("add_AIRS1 = %q\nadd_AIRSV = \"mount label:AIRSV\"\nadd_AIRY = \"mount label:AIRY; write /media/AIRY/open.txt x; hold /media/AIRY/open.txt\"\n", strings.Join(s1, "; "))
	r := runHost(t, realRuntime,
		plugin{"g", guestManifest("g", gGrant, gConfig), guest},
		plugin{"c", guestManifest("c", "[[mount]]\nsource = [\"label:AIRS2\"]\nfstype = [\"ext4\"]\n"+trigger, `add_AIRS2 = "mount label:AIRS2; crash-once"`), guest},
		plugin{"q", guestManifest("q", "[[mount]]\nsource = [\"label:AIRSV\"]\nfstype = [\"ext4\"]\n"+trigger, `add_AIRSV = "mount label:AIRSV"`), guest})
	r.log.Wait(1, "airlock running")

	// An operator's mount and a symlink in g's media root, made after the
	// host's start-up reconcile.
	media := r.media("g")
	foreign := filepath.Join(media, "foreign")
	if err := os.Mkdir(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, testenv.NeedCommand(t, "mount", "mount"), "-t", "tmpfs", "tmpfs", foreign)
	t.Cleanup(func() { testenv.Run(t, "umount", "-l", foreign) })
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(media, "link")); err != nil {
		t.Fatal(err)
	}

	sDev := tl.Attach(t, sImg, len(sParts))
	want := []string{
		`unmount foreign err=denied: plugin "g": mount unmount foreign denied: foreign was not mounted by plugin "g"; a plugin can unmount only what it mounted`,
		`mount label:AIRS1 fstype=vfat err=invalid: plugin "g": mount label:AIRS1: /dev/` + sDev + `p1 holds ext4, not vfat`,
		`mount label:AIRS1 opt=uid=3 err=denied: plugin "g": mount label:AIRS1 denied: option "uid=3" is not valid for ext4`,
		`mount label:AIRS1 target=link err=denied: plugin "g": mount label:AIRS1 denied: target "link" in the media root is a symbolic link; mounts never follow links`,
		`mount label:AIRS1 target=.. err=denied: plugin "g": mount label:AIRS1 denied: target ".." is not a name`,
		`mount label:AIRS1 opt=sync ok target=AIRS1 path=/media/AIRS1 device=/dev/` + sDev + `p1 readonly=false options=nosuid,nodev,noexec,errors=remount-ro,sync`,
		`read /media/AIRS1/f.txt = "hi"`,
	}
	if rootDev != "" {
		want = append(want, `mount device:`+rootDev+` err=denied: plugin "g": mount device:`+rootDev+` denied: `+rootDev+` is already mounted at /`)
	}
	// vfat: through the kernel, or fusefat where it lacks the driver
	// (TestLoopFuse); q's grant does not have it either way.
	want = append(want, `mount label:AIRSV ok target=AIRSV path=/media/AIRSV device=/dev/`+sDev+`p3 readonly=false options=nosuid,nodev,noexec`,
		`mount label:AIRSV err=denied: plugin "q": mount label:AIRSV denied: fstype vfat is not in [[mount]] fstype ["ext4"]`)
	for _, w := range want {
		r.log.Wait(1, w)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("something was mounted through the symlink: %v", entries)
	}
	if n := r.audit.Count("plugin=g", "capability=mount", "decision=deny"); n < 4 {
		t.Errorf("%d deny records for g, want at least 4:\n%s", n, strings.Join(r.audit.Lines(), "\n"))
	}

	// The crasher: its mount is undone when its instance dies.
	r.log.Wait(1, "INFO unmounted capability=mount", "plugin=c", "target=AIRS2", "why=plugin instance ended")
	r.log.Wait(1, "crash-once", "plugin=c", "restarting")
	for _, m := range mountsUnder(t, r.media("c")) {
		t.Errorf("c's mount survived its crash: %s", m.Mountpoint)
	}

	// Yanked with a file open on it.
	yDev := tl.Attach(t, yImg, 1)
	r.log.Wait(1, "hold /media/AIRY/open.txt ok", "plugin=g")
	testenv.Run(t, tl.Losetup, "-d", "/dev/"+yDev)
	r.log.Wait(1, `mount-event action=unmounted target=AIRY source=label:AIRY device=/dev/`+yDev+`p1 reason="loop device detached (losetup -d)"`, "plugin=g")
	if _, err := os.Stat(filepath.Join(media, "AIRY")); !os.IsNotExist(err) {
		t.Errorf("stale mount point AIRY: %v", err)
	}

	// Host shutdown unmounts what is left (AIRS1).
	// (The stop event ends the instance first, so its hook does it.)
	r.stop()
	r.log.Wait(1, "INFO unmounted capability=mount", "plugin=g", "target=AIRS1", "why=plugin instance ended")
	for _, m := range mountsUnder(t, media) {
		if m.Mountpoint != foreign {
			t.Errorf("left mounted after shutdown: %s", m.Mountpoint)
		}
	}
}
