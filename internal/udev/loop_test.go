package udev_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

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
	tl := testenv.NeedLoop(t, "attach loop devices and receive their kernel uevents")
	dir := t.TempDir()
	coldSpecs := []testenv.Partition{{Sfdisk: ",,c", FSType: "vfat", Label: "AIRCOLD"}}
	cold := tl.MakeImage(t, dir, "cold.img", coldSpecs)
	specs := []testenv.Partition{
		{Sfdisk: ",16M,c", FSType: "vfat", Label: "AIRV"},
		{Sfdisk: ",24M,83", FSType: "ext4", Label: "AIRE"},
		{Sfdisk: ",,7", FSType: "exfat", Label: "AIRX"},
	}
	img := tl.MakeImage(t, dir, "main.img", specs)

	coldDev := tl.Attach(t, cold, 1)
	log := runHost(t, "device = \"real\"\n[udev]\nsource = \"kernel\"\n", map[string]string{"loops": loopManifest})

	// Present before the start: a coldplug add, probed.
	log.Wait(1, "uevent action=add subsystem=block devtype=partition devname=/dev/"+coldDev+"p1 label=AIRCOLD uuid="+coldSpecs[0].UUID+" fstype=vfat synth=coldplug", "plugin=loops")

	dev := tl.Attach(t, img, len(specs))
	log.Wait(1, "uevent action=change subsystem=block devtype=disk devname=/dev/"+dev+" ", "plugin=loops")
	for i, s := range specs {
		log.Wait(1, fmt.Sprintf("uevent action=add subsystem=block devtype=partition devname=/dev/%sp%d label=%s uuid=%s fstype=%s synth= ", dev, i+1, s.Label, s.UUID, s.FSType), "plugin=loops")
	}
	tl.Detach(t, dev)
	for i, s := range specs {
		log.Wait(1, fmt.Sprintf("uevent action=remove subsystem=block devtype=partition devname=/dev/%sp%d label=%s uuid=%s fstype=%s synth= ", dev, i+1, s.Label, s.UUID, s.FSType), "plugin=loops")
	}
	tl.Detach(t, coldDev)
	log.Wait(1, "uevent action=remove subsystem=block devtype=partition devname=/dev/"+coldDev+"p1 label=AIRCOLD", "plugin=loops")
	if n := log.Count("uevent action=add", "devname=/dev/"+dev+"p1 "); n != 1 {
		t.Errorf("%d adds for %sp1, want exactly 1:\n%s", n, dev, strings.Join(log.Lines(), "\n"))
	}
}
