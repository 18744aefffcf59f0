package mount_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// TestLoopHangingProbe: a block device whose reads hang (a loop device
// over a FUSE file that never answers, as a dying stick) must not block a
// mount of another device, nor hold the mount lock: the plugin's mount by
// label of its own stick succeeds, its list call (which takes the lock)
// answers, and a mount of the hanging device itself fails with a clear
// error instead of waiting for it. Before the block-device table, every
// mount call probed every block device with a blocking read under the
// lock, and this call never returned.
func TestLoopHangingProbe(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices, one whose reads hang")
	dir := t.TempDir()
	okImg := tl.MakeImage(t, dir, "ok.img", []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "AIRHANGOK"}})
	raw := filepath.Join(dir, "hang.img")
	if err := os.WriteFile(raw, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	file, release := testenv.HangingFile(t, raw)
	hang := testenv.Run(t, tl.Losetup, "-f", "--show", "-r", file) // no -P: a scan would hang
	t.Cleanup(func() { release(); testenv.Run(t, tl.Losetup, "-d", hang) })

	trigger := "[[trigger.udev]]\nsubsystem = \"block\"\ndevtype = \"partition\"\naction = \"add\"\nproperties = { ID_FS_LABEL = \"AIRHANGOK\" }\n"
	grant := "[[mount]]\nsource = [\"label:AIRHANGOK\", \"device:" + hang + "\"]\nfstype = [\"ext4\"]\n" + trigger
	config := `add_AIRHANGOK = "mount label:AIRHANGOK; list; mount device:` + hang + `"` + "\n"
	r := runHost(t, realRuntime, plugin{"h", guestManifest("h", grant, config), guest})
	r.log.Wait(1, "airlock running")
	tl.Attach(t, okImg, 1)
	// Liveness bounds only (the log's wait): a hang fails them.
	r.log.Wait(1, "mount label:AIRHANGOK ok target=AIRHANGOK", "plugin=h")
	r.log.Wait(1, "list n=1 targets=AIRHANGOK", "plugin=h")
	r.log.Wait(1, "mount device:"+hang+" err=", "cannot be probed: probe timed out", "plugin=h")
	release()
	r.stop()
}
