package mount_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// TestLoopYankAfterMount pulls a real loop device out right after the
// plugin's mount call returned and before its next call (a yank inside the
// mount(2) call itself cannot be timed from a test, so this is the
// deterministic edge of it). The plugin's next calls come from the add
// event of a second stick: they must get an error or see the stick as
// gone, the plugin must get the unmounted mount event, no mount point may
// be left behind, and the host goes on mounting the second stick.
func TestLoopYankAfterMount(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices and mount them")
	dir := t.TempDir()
	yImg := tl.MakeImage(t, dir, "yank.img", []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "AIRYANK"}})
	nImg := tl.MakeImage(t, dir, "next.img", []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "AIRNEXT"}})
	trigger := "[[trigger.udev]]\nsubsystem = \"block\"\ndevtype = \"partition\"\naction = \"add\"\nproperties = { ID_FS_LABEL = \"AIR*\" }\n"
	grant := "[[mount]]\nsource = [\"label:AIRYANK\", \"label:AIRNEXT\"]\nfstype = [\"ext4\"]\n" + trigger
	config := `add_AIRYANK = "mount label:AIRYANK"
add_AIRNEXT = "write /media/AIRYANK/after.txt x; list; mount label:AIRNEXT; write /media/AIRNEXT/ok.txt y"
`
	r := runHost(t, realRuntime, plugin{"y", guestManifest("y", grant, config), guest})
	r.log.Wait(1, "airlock running")
	media := r.media("y")

	yDev := tl.Attach(t, yImg, 1)
	r.log.Wait(1, "mount label:AIRYANK ok target=AIRYANK", "plugin=y")
	testenv.Run(t, tl.Losetup, "-d", "/dev/"+yDev)

	nDev := tl.Attach(t, nImg, 1)
	r.log.Wait(1, "mount label:AIRNEXT ok target=AIRNEXT", "plugin=y")
	r.log.Wait(1, "write /media/AIRNEXT/ok.txt", "plugin=y")
	r.log.Wait(1, "mount-event action=unmounted target=AIRYANK", "plugin=y")
	// The next call after the yank, a write into the gone stick, either
	// fails or (if it ran before the host noticed) went to the doomed
	// mount; either way the unmounted event came. (The plugin does not
	// mount the stick again: a loop device that autoclear has not yet
	// released can be mounted again, and then legitimately stays.)
	var after []string
	for _, l := range r.log.Lines() {
		if strings.Contains(l, "plugin=y") && strings.Contains(l, "write /media/AIRYANK/after.txt") {
			after = append(after, l)
		}
	}
	t.Logf("the plugin's call after the yank:\n%s", strings.Join(after, "\n"))
	if len(after) != 1 {
		t.Errorf("want one report of the write after the yank, got %d:\n%s", len(after), strings.Join(r.log.Lines(), "\n"))
	}
	testenv.WaitPath(t, filepath.Join(media, "AIRYANK"), false)
	for _, m := range mountsUnder(t, media) {
		if m.Mountpoint != filepath.Join(media, "AIRNEXT") {
			t.Errorf("left mounted after the yank: %s", m.Mountpoint)
		}
	}
	if _, err := os.Stat(filepath.Join(media, "AIRNEXT", "ok.txt")); err != nil {
		t.Errorf("the host did not go on: %v", err)
	}
	testenv.Run(t, tl.Losetup, "-d", "/dev/"+nDev)
	r.log.Wait(1, "mount-event action=unmounted target=AIRNEXT", "plugin=y")
	r.stop()
	if ms := mountsUnder(t, media); len(ms) != 0 {
		t.Errorf("%d mounts left after host shutdown", len(ms))
	}
}
