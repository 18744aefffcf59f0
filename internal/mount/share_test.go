package mount_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// shareTrigger runs a guest's add_LABEL script when a stick labelled
// AIRSH* comes.
const shareTrigger = "[[trigger.udev]]\nsubsystem = \"block\"\ndevtype = \"partition\"\naction = \"add\"\nproperties = { ID_FS_LABEL = \"AIRSH*\" }\n"

// takes is a [[mount]] grant that takes shares from the plugin "own".
func takes(mode string) string {
	return "[[mount]]\nfrom = [\"own\"]\nmode = \"" + mode + "\"\n"
}

// A real ext4 loop device that plugin "own" mounts and shares read-only
// with "rdr": rdr sees own's file in its media root and in list, its write
// gets EROFS from the kernel, "oth" (which takes own's shares but was not
// offered) sees nothing, and the yank removes rdr's view first and tells
// it. The audit has the offer.
func TestLoopShareReadOnly(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices and mount them")
	img := tl.MakeImage(t, t.TempDir(), "sha.img", []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "AIRSHA"}})
	own := "[[mount]]\nsource = [\"label:AIRSHA\"]\nfstype = [\"ext4\"]\n" + shareTrigger
	r := runHost(t, realRuntime,
		plugin{"own", guestManifest("own", own, `add_AIRSHA = "mount label:AIRSHA target=pre; write /media/pre/f.txt hello; unmount pre; mount label:AIRSHA share=rdr"`), guest},
		plugin{"rdr", guestManifest("rdr", takes("ro"), `shared_shared_AIRSHA = "list; read /media/AIRSHA/f.txt; write /media/AIRSHA/w.txt x"`), guest},
		plugin{"oth", guestManifest("oth", takes("ro"), ""), guest})
	r.log.Wait(1, "airlock running")
	dev := tl.Attach(t, img, 1)
	r.log.Wait(1, "mount label:AIRSHA share=rdr ok target=AIRSHA", "shared=rdr=ro", "plugin=own")
	r.log.Wait(1, "list n=1 targets=AIRSHA(from own)", "plugin=rdr")
	r.log.Wait(1, `read /media/AIRSHA/f.txt = "hello"`, "plugin=rdr")
	r.log.Wait(1, "write /media/AIRSHA/w.txt x err=", "Read-only file system", "plugin=rdr")
	r.log.Wait(1, "mount-event action=shared target=AIRSHA", "owner=own", "plugin=rdr")
	view := filepath.Join(r.media("rdr"), "AIRSHA")
	// The per-mount flags of the view (not the superblock's: own's
	// mount of it is read-write).
	if ms := mountsUnder(t, r.media("rdr")); len(ms) != 1 || ms[0].Mountpoint != view {
		t.Errorf("rdr's media root does not have one mount at %s: %d", view, len(ms))
	} else if o := strings.Split(ms[0].Options, ","); !slices.Contains(o, "ro") || !slices.Contains(o, "nosuid") || !slices.Contains(o, "nodev") || !slices.Contains(o, "noexec") {
		t.Errorf("rdr's view has the options %s, want ro,nosuid,nodev,noexec", ms[0].Options)
	}
	if err := os.WriteFile(filepath.Join(view, "host.txt"), nil, 0o644); err == nil || !strings.Contains(err.Error(), "read-only file system") {
		t.Errorf("the kernel let a write through the ro view (even as root): %v", err)
	}
	if ms := mountsUnder(t, r.media("oth")); len(ms) != 0 {
		t.Errorf("oth was not offered the mount but has %s", ms[0].Mountpoint)
	}
	if n := r.audit.Count("plugin=own", "capability=mount", "decision=allow", "share AIRSHA with rdr"); n != 1 {
		t.Errorf("%d allow records of the offer, want 1:\n%s", n, strings.Join(r.audit.Lines(), "\n"))
	}

	testenv.Run(t, tl.Losetup, "-d", "/dev/"+dev)
	r.log.Wait(1, "mount-event action=unmounted target=AIRSHA", "owner=own", `reason="plugin own's mount ended:`, "plugin=rdr")
	r.log.Wait(1, "mount-event action=unmounted target=AIRSHA", "plugin=own")
	testenv.WaitPath(t, view, false)
	if ms := mountsUnder(t, r.media("rdr")); len(ms) != 0 {
		t.Errorf("rdr's view survived the yank: %s", ms[0].Mountpoint)
	}
}

// rw only when both sides say it: own offers AIRSHB read-write to "rw"
// (mode rw) and "ro" (mode ro), and AIRSHC read-only to "rw"; only rw's
// write to AIRSHB lands. Then own crashes (on a third stick), and every
// view goes with its mounts, and the readers are told.
func TestLoopShareReadWriteAndCrash(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices and mount them")
	img := tl.MakeImage(t, t.TempDir(), "shb.img", []testenv.Partition{
		{Sfdisk: ",20M,83", FSType: "ext4", Label: "AIRSHB"}, {Sfdisk: ",,83", FSType: "ext4", Label: "AIRSHC"}})
	crash := tl.MakeImage(t, t.TempDir(), "shd.img", []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "AIRSHD"}})
	own := "[[mount]]\nsource = [\"label:AIRSH*\"]\nfstype = [\"ext4\"]\n" + shareTrigger
	wr := `shared_shared_AIRSHB = "write /media/AIRSHB/%[1]s.txt x"
shared_shared_AIRSHC = "write /media/AIRSHC/%[1]s.txt x"
`
	r := runHost(t, realRuntime,
		plugin{"own", guestManifest("own", own, `add_AIRSHB = "mount label:AIRSHB share=rw share=ro sharerw"
add_AIRSHC = "mount label:AIRSHC share=rw"
add_AIRSHD = "crash-once"`), guest},
		plugin{"rw", guestManifest("rw", takes("rw"), strings.ReplaceAll(wr, "%[1]s", "rw")), guest},
		plugin{"ro", guestManifest("ro", takes("ro"), strings.ReplaceAll(wr, "%[1]s", "ro")), guest})
	r.log.Wait(1, "airlock running")
	tl.Attach(t, img, 2)
	r.log.Wait(1, "mount label:AIRSHB share=rw share=ro sharerw ok target=AIRSHB", "shared=rw=rw,ro=ro", "plugin=own")
	r.log.Wait(1, "write /media/AIRSHB/rw.txt x ok", "plugin=rw")
	r.log.Wait(1, "write /media/AIRSHB/ro.txt x err=", "Read-only file system", "plugin=ro")
	r.log.Wait(1, "write /media/AIRSHC/rw.txt x err=", "Read-only file system", "plugin=rw")
	if _, err := os.Stat(filepath.Join(r.media("own"), "AIRSHB", "rw.txt")); err != nil {
		t.Errorf("rw's write is not on the stick: %v", err)
	}
	// A third stick makes own crash: both of its mounts end, and with
	// them the three views.
	tl.Attach(t, crash, 1)
	r.log.Wait(1, "crash-once", "plugin=own", "restarting")
	for _, w := range [][]string{{"plugin=rw", "target=AIRSHB"}, {"plugin=ro", "target=AIRSHB"}, {"plugin=rw", "target=AIRSHC"}} {
		r.log.Wait(1, append([]string{"mount-event action=unmounted", "owner=own", "plugin instance ended"}, w...)...)
	}
	for _, p := range []string{"own", "rw", "ro"} {
		if ms := mountsUnder(t, r.media(p)); len(ms) != 0 {
			t.Errorf("%s: %s survived own's crash", p, ms[0].Mountpoint)
		}
	}
}

// Hostile owners and readers: a plugin whose grant takes shares from
// itself is not loaded; own shares with itself, with a plugin that
// is not there, and with one that does not take its shares (each denied
// and audited, nothing mounted); a reader that planted a symlink where
// its view would go gets no view and nothing lands behind the link.
func TestLoopShareDenials(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices and mount them")
	img := tl.MakeImage(t, t.TempDir(), "shx.img", []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "AIRSHX"}})
	own := "[[mount]]\nsource = [\"label:AIRSHX\"]\nfstype = [\"ext4\"]\n" + shareTrigger
	r := runHost(t, realRuntime,
		plugin{"selfie", guestManifest("selfie", "[[mount]]\nfrom = [\"selfie\"]\n", ""), guest},
		plugin{"own", guestManifest("own", own, `add_AIRSHX = "mount label:AIRSHX share=own; mount label:AIRSHX share=ghost; mount label:AIRSHX share=nofrom; list; mount label:AIRSHX share=rdr"`), guest},
		plugin{"nofrom", guestManifest("nofrom", "[[mount]]\nsource = [\"label:AIRNONE\"]\nfstype = [\"ext4\"]\n", ""), guest},
		plugin{"rdr", guestManifest("rdr", takes("ro"), ""), guest})
	r.log.Wait(1, "airlock running", "failed=1")
	r.log.Wait(1, `plugin not loaded`, `plugin "selfie": mount: [[mount]] from names the plugin itself`)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(r.media("rdr"), "AIRSHX")); err != nil {
		t.Fatal(err)
	}
	tl.Attach(t, img, 1)
	for _, w := range []string{
		`mount label:AIRSHX share=own err=denied: plugin "own": mount label:AIRSHX share with own denied: a plugin cannot share a mount with itself`,
		`mount label:AIRSHX share=ghost err=denied: plugin "own": mount label:AIRSHX share with ghost denied: no plugin "ghost" with a [[mount]] grant is loaded`,
		`mount label:AIRSHX share=nofrom err=denied: plugin "own": mount label:AIRSHX share with nofrom denied: plugin "nofrom" does not take shares from "own"`,
		"list n=0",
		"mount label:AIRSHX share=rdr ok target=AIRSHX",
	} {
		r.log.Wait(1, w, "plugin=own")
	}
	r.log.Wait(1, "shared=rdr=failed", "plugin=own")
	if n := r.audit.Count("plugin=own", "capability=mount", "decision=deny", "share"); n != 4 {
		t.Errorf("%d deny records of shares, want 4:\n%s", n, strings.Join(r.audit.Lines(), "\n"))
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the view followed rdr's symlink: %v", entries)
	}
	if ms := mountsUnder(t, r.media("rdr")); len(ms) != 0 {
		t.Errorf("rdr got a view through its symlink: %s", ms[0].Mountpoint)
	}
}
