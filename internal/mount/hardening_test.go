package mount_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/airlockhq/airlock/internal/testenv"
)

// asNobody runs a program as uid/gid 65534 with no groups, through
// util-linux's setpriv, and returns its output and error.
func asNobody(t *testing.T, prog string, args ...string) (string, error) {
	t.Helper()
	setpriv := testenv.NeedCommand(t, "setpriv", "util-linux")
	b, err := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", prog}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(b)), err
}

// openToOthers lets uid 65534 reach dir: t.TempDir makes each level 0700.
func openToOthers(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// A stick that carries a setuid-root program and a device node. Mounted
// by the test itself (no hardening), the program runs as root for nobody
// and the node opens: the stick is a real threat. Mounted through the
// capability, exec is refused (noexec); with exec given back on a bind of
// that mount the program still runs as nobody (nosuid); and the node
// cannot be opened, even by root (nodev).
func TestLoopSuidStick(t *testing.T) {
	tl := testenv.NeedLoop(t, "put a setuid program on a loop device and mount it")
	mountCmd := testenv.NeedCommand(t, "mount", "mount")
	dir := t.TempDir()
	openToOthers(t, dir)
	parts := []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "AIRSUID"}}
	img := tl.MakeImage(t, dir, "suid.img", parts)
	dev := tl.Attach(t, img, 1)

	// Fill the stick, and show what it does without the host's hardening.
	plain := filepath.Join(dir, "plain")
	if err := os.Mkdir(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, mountCmd, "/dev/"+dev+"p1", plain)
	id, err := exec.LookPath("id")
	if err != nil {
		testenv.Missing(t, "id (coreutils)")
	}
	b, err := os.ReadFile(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plain, "euid"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(plain, "euid"), 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(plain, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if out, err := asNobody(t, filepath.Join(plain, "euid"), "-u"); err != nil || out != "0" {
		t.Fatalf("control: the setuid copy of id, run by nobody from a plain mount, printed %q (%v), want 0", out, err)
	}
	if f, err := os.OpenFile(filepath.Join(plain, "null"), os.O_WRONLY, 0); err != nil {
		t.Fatalf("control: the device node on a plain mount: %v", err)
	} else {
		f.Close()
	}
	testenv.Run(t, "umount", plain)

	r := runHost(t, realRuntime, plugin{"g", guestManifest("g", "[[mount]]\nsource = [\"label:AIRSUID\"]\nfstype = [\"ext4\"]\n",
		`start = "mount label:AIRSUID"`), guest})
	r.log.Wait(1, "mount label:AIRSUID ok target=AIRSUID path=/media/AIRSUID device=/dev/"+dev+"p1 readonly=false options=nosuid,nodev,noexec", "plugin=g")
	openToOthers(t, r.dir)
	stick := filepath.Join(r.media("g"), "AIRSUID")
	fi, err := os.Stat(filepath.Join(stick, "euid"))
	if err != nil || fi.Mode()&os.ModeSetuid == 0 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatalf("the setuid-root file on the mounted stick: %v, %v", fi, err)
	}

	// noexec: the kernel refuses the exec itself, setuid or not.
	out, err := asNobody(t, filepath.Join(stick, "euid"), "-u")
	if err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("exec from the capability's mount: %q, %v; want EACCES (Permission denied)", out, err)
	}
	if err := exec.Command(filepath.Join(stick, "euid")).Run(); !errors.Is(err, syscall.EACCES) {
		t.Errorf("exec as root from the capability's mount: %v, want EACCES", err)
	}

	// nosuid on its own: a bind of the capability's mount keeps its flags;
	// clear only noexec there, and the setuid bit still gives nothing.
	bind := filepath.Join(dir, "bind")
	if err := os.Mkdir(bind, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(stick, bind, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(bind, unix.MNT_DETACH) })
	if err := unix.MountSetattr(-1, bind, 0, &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_NOEXEC}); err != nil {
		testenv.Missing(t, "mount_setattr(2) (Linux 5.12): "+err.Error())
	}
	if ms, _ := mountinfo.GetMounts(mountinfo.SingleEntryFilter(bind)); len(ms) != 1 ||
		!slices.Contains(strings.Split(ms[0].Options, ","), "nosuid") || slices.Contains(strings.Split(ms[0].Options, ","), "noexec") {
		t.Fatalf("the bind should be nosuid and exec: %+v", ms)
	}
	if out, err := asNobody(t, filepath.Join(bind, "euid"), "-u"); err != nil || out != "65534" {
		t.Errorf("the setuid-root program, run by nobody under nosuid, printed euid %q (%v), want 65534", out, err)
	}
	unix.Unmount(bind, 0)

	// nodev: the node is there, but opening it fails, even for root.
	if _, err := os.OpenFile(filepath.Join(stick, "null"), os.O_WRONLY, 0); !errors.Is(err, syscall.EACCES) {
		t.Errorf("opening the device node on the capability's mount: %v, want EACCES (nodev)", err)
	}
	r.stop()
	if ms := mountsUnder(t, r.media("g")); len(ms) != 0 {
		t.Errorf("%d mounts left after host shutdown", len(ms))
	}
}

// A write-protected stick (blockdev --setro) mounted read-write through
// the capability falls back to read-only and says why; writes then fail
// with EROFS. The host's fallback is the same for every type (it looks
// only at the errno), but the errno comes from each filesystem's own open
// of the device (ext4 and xfs go through the VFS's get_tree_bdev, btrfs
// opens its devices itself), so an xfs and a btrfs partition are checked
// too where the kernel has them. Two sticks that are dd copies of one
// image share a UUID: uuid: refuses to pick one, naming both devices.
func TestLoopReadOnlyAndTwins(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices and mount them")
	blockdev := testenv.NeedCommand(t, "blockdev", "util-linux")
	dir := t.TempDir()
	ro := []testenv.Partition{
		{Sfdisk: ",20M,83", FSType: "ext4", Label: "AIRRO"},
		{Sfdisk: ",300M,83", FSType: "xfs", Label: "AIRROX"},
		{Sfdisk: ",,83", FSType: "btrfs", Label: "AIRROB"},
	}
	roImg := tl.MakeSizedImage(t, dir, "ro.img", 512<<20, ro)
	twin := []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "AIRTWIN"}}
	twinImg := tl.MakeImage(t, dir, "twin.img", twin)
	testenv.Run(t, "cp", "--sparse=always", twinImg, filepath.Join(dir, "twin2.img"))

	roDev := tl.Attach(t, roImg, len(ro))
	start := ""
	for i, p := range ro {
		node := fmt.Sprintf("/dev/%sp%d", roDev, i+1)
		testenv.Run(t, blockdev, "--setro", node)
		if got := testenv.Run(t, blockdev, "--getro", node); got != "1" {
			t.Fatalf("blockdev --getro %s: %s", node, got)
		}
		start += "mount label:" + p.Label + "; write /media/" + p.Label + "/new.txt x; "
	}
	twinA := tl.Attach(t, twinImg, 1)
	twinB := tl.Attach(t, filepath.Join(dir, "twin2.img"), 1)

	r := runHost(t, realRuntime, plugin{"g", guestManifest("g", "[[mount]]\nsource = [\"label:AIRRO*\", \"uuid:*\"]\nfstype = [\"ext4\", \"xfs\", \"btrfs\"]\n",
		`start = "`+start+`mount uuid:`+twin[0].UUID+`"`), guest})
	mounted := 0
	for i, p := range ro {
		if !kernelHas(p.FSType) {
			r.log.Wait(1, "mount label:"+p.Label+` err=unavailable: plugin "g": mount label:`+p.Label+": this kernel cannot mount "+p.FSType, "plugin=g")
			continue
		}
		options := "nosuid,nodev,noexec,ro"
		if p.FSType == "ext4" {
			options = "nosuid,nodev,noexec,errors=remount-ro,ro"
		}
		r.log.Wait(1, fmt.Sprintf("mount label:%s ok target=%[1]s path=/media/%[1]s device=/dev/%sp%d readonly=true options=%s", p.Label, roDev, i+1, options),
			`note="mounted read-only: a read-write mount failed (permission denied)"`, "plugin=g")
		// EROFS reaches the guest as EROFS (wazero has that errno).
		r.log.Wait(1, "write /media/"+p.Label+"/new.txt x err=open /media/"+p.Label+"/new.txt: Read-only file system", "plugin=g")
		at := filepath.Join(r.media("g"), p.Label)
		if err := os.WriteFile(filepath.Join(at, "host.txt"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
			t.Errorf("writing on the read-only fallback (%s) from the host: %v, want EROFS", p.FSType, err)
		}
		if ms, _ := mountinfo.GetMounts(mountinfo.SingleEntryFilter(at)); len(ms) != 1 || ms[0].FSType != p.FSType || !slices.Contains(strings.Split(ms[0].Options, ","), "ro") {
			t.Errorf("the fallback is not a read-only %s mount: %+v", p.FSType, ms)
		}
		mounted++
	}

	lo, hi := twinA, twinB
	if lo > hi {
		lo, hi = hi, lo
	}
	r.log.Wait(1, "mount uuid:"+twin[0].UUID+` err=invalid: plugin "g": mount uuid:`+twin[0].UUID+": 2 devices match (/dev/"+lo+"p1, /dev/"+hi+
		"p1); they hold copies of one filesystem; mount by device: instead, or give one a new UUID (tune2fs -U, mlabel -n)", "plugin=g")
	if n := len(mountsUnder(t, r.media("g"))); n != mounted {
		t.Errorf("%d mounts, want only the %d read-only ones", n, mounted)
	}
}
