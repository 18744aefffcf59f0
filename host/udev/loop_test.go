package udev_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host/internal/testenv"
)

// fsSpec is one partition of a test image: its sfdisk line, mkfs and label.
type fsSpec struct {
	sfdisk, fstype, label string
	uuid                  string // filled from blkid after mkfs
}

// tools are the commands the loop tests run, found once.
type tools struct{ losetup, sfdisk, partx, blkid string }

func needLoopTools(t *testing.T) tools {
	t.Helper()
	testenv.NeedRoot(t, "attach loop devices and receive their kernel uevents")
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		testenv.Missing(t, "/dev/loop-control (load the loop driver: modprobe loop)")
	}
	return tools{
		losetup: testenv.NeedCommand(t, "losetup", "mount"),
		sfdisk:  testenv.NeedCommand(t, "sfdisk", "fdisk"),
		partx:   testenv.NeedCommand(t, "partx", "util-linux"),
		blkid:   testenv.NeedCommand(t, "blkid", "util-linux"),
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return strings.TrimSpace(string(b))
}

// attach sets up a loop device with partitions and returns its name
// ("loop3"). Kernels built without partition-table parsers (this CI's has
// no CONFIG_MSDOS_PARTITION) ignore losetup -P, so partx adds the
// partitions through BLKPG, which sends the same kernel add events.
func (tl tools) attach(t *testing.T, img string, parts int) string {
	t.Helper()
	dev := run(t, tl.losetup, "-P", "-f", "--show", img)
	name := filepath.Base(dev)
	t.Cleanup(func() { exec.Command(tl.losetup, "-d", dev).Run() })
	if _, err := os.Stat(fmt.Sprintf("/sys/class/block/%sp1", name)); err != nil {
		run(t, tl.partx, "-a", dev)
	}
	for i := 1; i <= parts; i++ {
		waitPath(t, fmt.Sprintf("/dev/%sp%d", name, i), true)
	}
	return name
}

func (tl tools) detach(t *testing.T, name string) {
	t.Helper()
	run(t, tl.losetup, "-d", "/dev/"+name)
	waitPath(t, fmt.Sprintf("/sys/class/block/%sp1", name), false)
}

// waitPath waits for a path to appear or go (a liveness bound only).
func waitPath(t *testing.T, p string, present bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(p); (err == nil) == present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: present=%v never came", p, present)
		}
	}
}

// makeImage writes an image with one partition per spec, made by the real
// mkfs tools, and fills in each UUID as blkid reads it.
func (tl tools) makeImage(t *testing.T, dir, file string, specs []fsSpec) string {
	t.Helper()
	img := filepath.Join(dir, file)
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	script := "label: dos\n"
	for _, s := range specs {
		script += s.sfdisk + "\n"
	}
	cmd := exec.Command(tl.sfdisk, "-q", img)
	cmd.Stdin = strings.NewReader(script)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, b)
	}
	name := tl.attach(t, img, len(specs))
	for i := range specs {
		s := &specs[i]
		part := fmt.Sprintf("/dev/%sp%d", name, i+1)
		switch s.fstype {
		case "vfat":
			run(t, testenv.NeedCommand(t, "mkfs.vfat", "dosfstools"), "-n", s.label, part)
		case "ext4":
			run(t, testenv.NeedCommand(t, "mkfs.ext4", "e2fsprogs"), "-q", "-L", s.label, part)
		case "exfat":
			run(t, testenv.NeedCommand(t, "mkfs.exfat", "exfatprogs"), "-L", s.label, part)
		}
		s.uuid = run(t, tl.blkid, "-p", "-o", "value", "-s", "UUID", part)
	}
	tl.detach(t, name)
	return img
}

const loopManifest = `name = "loops"
version = "1.0.0"

[[trigger.udev]]
subsystem = "block"
devtype = "partition"
action = ["add", "remove"]
properties = { ID_FS_LABEL = "AIR*" }

[[trigger.udev]]
subsystem = "block"
devtype = "disk"
kernel = "loop*"
action = "change"
`

// TestLoopDevices is the real device path, as root: kernel uevents from
// loop devices through netlink, superblocks probed by the host (kernel
// events carry no ID_FS_*), coldplug of a device attached before the
// start, and removes that repeat the probed label as udevd would.
func TestLoopDevices(t *testing.T) {
	tl := needLoopTools(t)
	dir := t.TempDir()
	coldSpecs := []fsSpec{{sfdisk: ",,c", fstype: "vfat", label: "AIRCOLD"}}
	cold := tl.makeImage(t, dir, "cold.img", coldSpecs)
	specs := []fsSpec{
		{sfdisk: ",16M,c", fstype: "vfat", label: "AIRV"},
		{sfdisk: ",24M,83", fstype: "ext4", label: "AIRE"},
		{sfdisk: ",,7", fstype: "exfat", label: "AIRX"},
	}
	img := tl.makeImage(t, dir, "main.img", specs)

	coldDev := tl.attach(t, cold, 1)
	log := runHost(t, "device = \"real\"\n[udev]\nsource = \"kernel\"\n", map[string]string{"loops": loopManifest})

	// Present before the start: a coldplug add, probed.
	log.Wait(1, "uevent action=add subsystem=block devtype=partition devname=/dev/"+coldDev+"p1 label=AIRCOLD uuid="+coldSpecs[0].uuid+" fstype=vfat synth=coldplug", "plugin=loops")

	dev := tl.attach(t, img, len(specs))
	log.Wait(1, "uevent action=change subsystem=block devtype=disk devname=/dev/"+dev+" ", "plugin=loops")
	for i, s := range specs {
		log.Wait(1, fmt.Sprintf("uevent action=add subsystem=block devtype=partition devname=/dev/%sp%d label=%s uuid=%s fstype=%s synth= ", dev, i+1, s.label, s.uuid, s.fstype), "plugin=loops")
	}
	tl.detach(t, dev)
	for i, s := range specs {
		log.Wait(1, fmt.Sprintf("uevent action=remove subsystem=block devtype=partition devname=/dev/%sp%d label=%s uuid=%s fstype=%s synth= ", dev, i+1, s.label, s.uuid, s.fstype), "plugin=loops")
	}
	tl.detach(t, coldDev)
	log.Wait(1, "uevent action=remove subsystem=block devtype=partition devname=/dev/"+coldDev+"p1 label=AIRCOLD", "plugin=loops")
	if n := log.Count("uevent action=add", "devname=/dev/"+dev+"p1 "); n != 1 {
		t.Errorf("%d adds for %sp1, want exactly 1:\n%s", n, dev, strings.Join(log.Lines(), "\n"))
	}
}
