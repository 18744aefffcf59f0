package mount_test

import (
	"fmt"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// TestLoopDisksPolicy: on a machine whose disks are not all the device's
// to give out, real mode takes only what runtime.toml's [mount] disks
// says. By default that is removable and USB disks, so the test's own
// loop device is refused, with an audit record and a message that says how
// to allow it; named in disks, the same disk is mounted.
func TestLoopDisksPolicy(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices and mount them")
	img := tl.MakeImage(t, t.TempDir(), "d.img", []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "AIRDISK"}})
	grant := "[[mount]]\nsource = [\"label:AIRDISK\"]\nfstype = [\"ext4\"]\n" +
		"[[trigger.udev]]\nsubsystem = \"block\"\ndevtype = \"partition\"\naction = \"add\"\nproperties = { ID_FS_LABEL = \"AIRDISK\" }\n"
	g := plugin{"g", guestManifest("g", grant, `add_AIRDISK = "mount label:AIRDISK"`), guest}

	r := runHost(t, kernelRuntime, g)
	r.log.Wait(1, "airlock running")
	dev := tl.Attach(t, img, 1)
	r.log.Wait(1, `mount label:AIRDISK err=denied: plugin "g": mount label:AIRDISK denied: /dev/`+dev+`p1 is on disk `+dev+
		`, a loop device, and [mount] disks in runtime.toml gives out only removable (add "`+dev+`" to it to allow this disk)`)
	if n := r.audit.Count("plugin=g", "capability=mount", "decision=deny", "a loop device"); n != 1 {
		t.Errorf("%d deny records for the loop device, want 1", n)
	}
	if ms := mountsUnder(t, r.media("g")); len(ms) != 0 {
		t.Errorf("mounted although refused: %v", ms[0].Mountpoint)
	}
	r.stop()

	// Given out by name: the device present at start is mounted.
	r = runHost(t, kernelRuntime+fmt.Sprintf("[mount]\ndisks = [%q]\n", dev), g)
	r.log.Wait(1, "mount label:AIRDISK ok target=AIRDISK path=/media/AIRDISK device=/dev/"+dev+"p1")
	r.stop()
}
