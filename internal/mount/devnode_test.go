package mount_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// TestLoopWithoutDevNodes: as in a container without udevd, the stick's
// /dev node does not exist (the host looks in an empty directory instead of
// /dev). Its superblock is still probed (the plugin's trigger matches on
// the label), it is mounted and written to through a node the host makes
// from the device number, and no node is left behind in <state_dir>/dev.
func TestLoopWithoutDevNodes(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices and mount them")
	img := tl.MakeImage(t, t.TempDir(), "n.img", []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "AIRNODE"}})
	noDev := t.TempDir()
	grant := "[[mount]]\nsource = [\"label:AIRNODE\"]\nfstype = [\"ext4\"]\n" +
		"[[trigger.udev]]\nsubsystem = \"block\"\ndevtype = \"partition\"\naction = \"add\"\nproperties = { ID_FS_LABEL = \"AIRNODE\" }\n"
	r := runHostDev(t, noDev, realRuntime, plugin{"g", guestManifest("g", grant, `add_AIRNODE = "mount label:AIRNODE; write /media/AIRNODE/f.txt hi"`), guest})
	r.log.Wait(1, "airlock running")
	dev := tl.Attach(t, img, 1)
	r.log.Wait(1, "mount label:AIRNODE ok target=AIRNODE path=/media/AIRNODE device=/dev/"+dev+"p1")
	r.log.Wait(1, "write /media/AIRNODE/f.txt hi ok")
	if b, err := os.ReadFile(filepath.Join(r.media("g"), "AIRNODE", "f.txt")); err != nil || string(b) != "hi" {
		t.Errorf("the file on the stick: %q, %v", b, err)
	}
	nodes := filepath.Join(r.dir, "state", "dev")
	if st, err := os.Stat(nodes); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the host's node directory %s: %v, %v; want it made, mode 0700", nodes, st, err)
	}
	if left, _ := os.ReadDir(nodes); len(left) != 0 {
		t.Errorf("device nodes left behind in %s: %v", nodes, left)
	}
	if n := r.log.Count("probe failed"); n != 0 {
		t.Errorf("%d probe failures:\n%s", n, strings.Join(r.log.Lines(), "\n"))
	}
	tl.Detach(t, dev)
	r.log.Wait(1, "INFO unmounted capability=mount", "plugin=g", "target=AIRNODE")
	if ms := mountsUnder(t, r.media("g")); len(ms) != 0 {
		t.Errorf("still mounted after the detach: %s", ms[0].Mountpoint)
	}
}
