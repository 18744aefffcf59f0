package mount_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/airlockhq/airlock/internal/testenv"
)

// tmpScript writes to /tmp, fills it past its size, shows the plugin goes
// on (through /data), and crashes once, so that the restarted instance
// runs it again on the emptied /tmp.
const tmpScript = `start = "read /tmp/a.txt; write /tmp/a.txt hi; read /tmp/a.txt; fill /tmp/big 1048576; write /data/after.txt on; read /data/after.txt; crash-once"`

// The error a guest sees when /tmp is full: wazero's errno set has no
// ENOSPC, so it is EIO (RATIONALE.md, Reliability).
var tmpFull = regexp.MustCompile(`fill /tmp/big 1048576 wrote=(\d+) err=(write /tmp/big: [^=]*) plugin=g`)

// [storage] tmp as root on the real device: a private tmpfs at /tmp,
// nosuid,nodev,noexec, mode 0700, of the size asked. Writing past it fails
// in the guest and the host goes on; the tmpfs is emptied and leaves the
// mount table when the instance ends (the restarted instance finds /tmp
// empty and still bounded), and nothing is left after the host stops.
func TestLoopTmpfs(t *testing.T) {
	testenv.NeedRoot(t, "mount a tmpfs")
	r := runHost(t, realRuntime, plugin{"g", guestManifest("g", "tmp = \"256KiB\"\n[[mount]]\nsource = [\"label:NONE\"]\nfstype = [\"ext4\"]\n", tmpScript), guest},
		plugin{"h", guestManifest("h", "tmp = \"128KiB\"\n[[mount]]\nsource = [\"label:NONE\"]\nfstype = [\"ext4\"]\n", `start = "write /tmp/x.txt y"`), guest})
	tmpBase := filepath.Join(r.dir, "state", "tmp")
	r.log.Wait(1, "tmp mounted", "plugin=g", "size=256KiB", "options=nosuid,nodev,noexec,mode=0700")
	r.log.Wait(1, `read /tmp/a.txt = "hi"`, "plugin=g")
	r.log.Wait(1, "fill /tmp/big 1048576 wrote=", "plugin=g")

	// h does not crash: its tmpfs stays mounted until the host stops.
	r.log.Wait(1, "write /tmp/x.txt y ok", "plugin=h")
	ms := mountsUnder(t, filepath.Join(tmpBase, "h"))
	if len(ms) != 1 {
		t.Fatalf("%d mounts for h's /tmp, want 1", len(ms))
	}
	var st unix.Statfs_t
	if err := unix.Statfs(ms[0].Mountpoint, &st); err != nil {
		t.Fatal(err)
	}
	for _, f := range []int64{unix.ST_NOSUID, unix.ST_NODEV, unix.ST_NOEXEC} {
		if st.Flags&f == 0 {
			t.Errorf("h's tmpfs lacks flag %#x: %q", f, ms[0].Options)
		}
	}
	if ms[0].FSType != "tmpfs" || !strings.Contains(ms[0].VFSOptions, "size=128k") || !strings.Contains(ms[0].VFSOptions, "mode=700") {
		t.Errorf("h's /tmp: %s %q, want tmpfs size=128k mode=700", ms[0].FSType, ms[0].VFSOptions)
	}

	r.log.Wait(1, `read /data/after.txt = "on"`, "plugin=g")
	r.log.Wait(1, "INFO tmp unmounted capability=mount", "plugin=g", "why=plugin instance ended")
	r.log.Wait(1, "crash-once already crashed", "plugin=g")
	lines := r.log.Lines()
	var fills []string
	for _, l := range lines {
		if m := tmpFull.FindStringSubmatch(l); m != nil {
			fills = append(fills, m[0])
			n, _ := strconv.Atoi(m[1])
			if n >= 256<<10 || n < 128<<10 {
				t.Errorf("wrote %d bytes into a 256 KiB tmpfs", n)
			}
			if m[2] != "write /tmp/big: I/O error" {
				t.Errorf("a full /tmp gave %q, want EIO", m[2])
			}
		}
	}
	if len(fills) != 2 || fills[0] != fills[1] {
		t.Errorf("fills %q: want the same bound twice (the restarted instance finds /tmp empty)", fills)
	}
	// The restarted instance found /tmp empty: its first read failed.
	if n := r.log.Count("read /tmp/a.txt err=", "plugin=g"); n != 2 {
		t.Errorf("a.txt was there at the start of %d of 2 instances", 2-n)
	}
	if ms := mountsUnder(t, filepath.Join(tmpBase, "g")); len(ms) != 0 {
		t.Errorf("g's tmpfs still mounted after its instance ended: %s", ms[0].Mountpoint)
	}
	r.stop()
	if ms := mountsUnder(t, tmpBase); len(ms) != 0 {
		t.Errorf("tmpfs left mounted after host shutdown: %s", ms[0].Mountpoint)
	}
	if _, err := os.Stat(tmpBase); !os.IsNotExist(err) {
		t.Errorf("%s left after host shutdown: %v", tmpBase, err)
	}
}

// [storage] tmp on the simulated device: a plain directory, unbounded,
// and the log says so; it is emptied when the instance ends and removed
// at shutdown.
func TestSimTmpDirectory(t *testing.T) {
	r := runHost(t, simRuntime(quietReplay(t)), plugin{"g", guestManifest("g", "tmp = \"64KiB\"\n[[mount]]\nsource = [\"label:MEDIA\"]\nfstype = [\"vfat\"]\n",
		`start = "read /tmp/a.txt; write /tmp/a.txt hi; read /tmp/a.txt; fill /tmp/big 131072; crash-once"`), guest})
	r.log.Wait(1, "WARN tmp is a plain directory: its size is not enforced", "plugin=g", "size=64KiB", "why=the simulated device has no mounts")
	r.log.Wait(1, `read /tmp/a.txt = "hi"`, "plugin=g")
	r.log.Wait(1, "fill /tmp/big 131072 wrote=131072 ok", "plugin=g")
	r.log.Wait(1, "crash-once already crashed", "plugin=g")
	if n := r.log.Count("read /tmp/a.txt err=", "plugin=g"); n != 2 {
		t.Errorf("a.txt was there at the start of %d of 2 instances", 2-n)
	}
	r.stop()
	if _, err := os.Stat(filepath.Join(r.dir, "state", "tmp")); !os.IsNotExist(err) {
		t.Errorf("tmp directory left after host shutdown: %v", err)
	}
}
