package mount_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// A GPT stick on a real loop device: one partition mounted by its PARTUUID
// (asked in upper case, as some tools print it) and one by its PARTLABEL,
// each grant naming only what it selects; a partlabel the grant does not
// cover is denied.
func TestLoopPartUUIDAndPartLabel(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach a GPT loop device and mount its partitions")
	mkfs := testenv.NeedCommand(t, "mkfs.ext4", "e2fsprogs")
	const partUUID = "a1b2c3d4-0000-4000-8000-00000000a1b2"
	img := tl.PartitionImage(t, t.TempDir(), "gpt.img", 64<<20, "label: gpt\nsize=20M, type=L, name=\"AIRbyuuid\", uuid="+partUUID+"\n"+
		"size=20M, type=L, name=\"AIRpartL\"\nsize=8M, type=L, name=\"AIRother\"\n")
	dev := tl.Attach(t, img, 3)
	for i, l := range []string{"AIRPU", "AIRPL", "AIRPX"} {
		testenv.Run(t, mkfs, "-q", "-L", l, "/dev/"+dev+"p"+string(rune('1'+i)))
	}
	tl.Detach(t, dev)

	trigger := "[[trigger.udev]]\nsubsystem = \"block\"\ndevtype = \"partition\"\naction = \"add\"\nproperties = { ID_FS_LABEL = \"AIRP*\" }\n"
	grant := "[[mount]]\nsource = [\"partuuid:" + partUUID + "\", \"partlabel:AIRpart*\"]\nfstype = [\"ext4\"]\n" + trigger
	config := "add_AIRPU = \"mount partuuid:" + strings.ToUpper(partUUID) + " target=byuuid\"\n" +
		"add_AIRPL = \"mount partlabel:AIRpartL target=bylabel\"\n" +
		"add_AIRPX = \"mount partlabel:AIRother target=other\"\n"
	r := runHost(t, realRuntime, plugin{"g", guestManifest("g", grant, config), guest})
	r.log.Wait(1, "airlock running")
	dev = tl.Attach(t, img, 3)
	r.log.Wait(1, "mount partuuid:"+strings.ToUpper(partUUID)+" target=byuuid ok target=byuuid path=/media/byuuid device=/dev/"+dev+"p1 ")
	r.log.Wait(1, "mount partlabel:AIRpartL target=bylabel ok target=bylabel path=/media/bylabel device=/dev/"+dev+"p2 ")
	r.log.Wait(1, `mount partlabel:AIRother target=other err=denied: plugin "g": mount partlabel:AIRother denied: /dev/`+dev+`p3 (label AIRPX, uuid `)
	if n := r.audit.Count("plugin=g", "capability=mount", "op=partuuid:"+strings.ToUpper(partUUID), "decision=allow"); n != 1 {
		t.Errorf("%d allow records for the partuuid mount, want 1:\n%s", n, strings.Join(r.audit.Lines(), "\n"))
	}
	media := r.media("g")
	for _, at := range []string{"byuuid", "bylabel"} {
		ms := mountsUnder(t, media)
		found := false
		for _, m := range ms {
			found = found || m.Mountpoint == filepath.Join(media, at)
		}
		if !found {
			t.Errorf("%s is not in the mount table", at)
		}
	}
}
