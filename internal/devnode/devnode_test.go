package devnode

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/udev/probe"
)

// TestPath, on the test's own loop device: the /dev node is used when it
// names the device; a missing node, or one of that name that names another
// device (a stale snapshot of /dev), is replaced by a node the host makes,
// through which the superblock reads; release removes it.
func TestPath(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach a loop device and make its nodes")
	img := tl.MakeImage(t, t.TempDir(), "p.img", []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "AIRDEVNODE"}})
	dev := tl.Attach(t, img, 1)
	name := dev + "p1"
	num, err := os.ReadFile("/sys/class/block/" + name + "/dev")
	if err != nil {
		t.Fatal(err)
	}
	major, minor, err := ParseMajMin(string(num))
	if err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(t.TempDir(), "state", "dev")

	n := &Nodes{DevDir: "/dev", Dir: private}
	p, release, err := n.Path(name, major, minor)
	if err != nil || p != "/dev/"+name {
		t.Fatalf("with a right /dev node: %q, %v; want /dev/%s", p, err, name)
	}
	release()

	stale := t.TempDir()
	if err := unix.Mknod(filepath.Join(stale, name), unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor+1000))); err != nil {
		t.Fatal(err)
	}
	for what, devDir := range map[string]string{"missing": t.TempDir(), "stale": stale} {
		n := &Nodes{DevDir: devDir, Dir: private}
		p, release, err := n.Path(name, major, minor)
		if err != nil {
			t.Fatalf("%s node: %v", what, err)
		}
		if filepath.Dir(p) != private {
			t.Errorf("%s node: %s, want one made in %s", what, p, private)
		}
		res, err := probe.ProbeFile(p)
		if err != nil || res.Label != "AIRDEVNODE" {
			t.Errorf("%s node: probe %s: %+v, %v", what, p, res, err)
		}
		release()
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s node: %s left after release: %v", what, p, err)
		}
	}
	if st, err := os.Stat(private); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("private directory: %v, %v; want mode 0700", st, err)
	}

	// A node left by a run that crashed is removed at the next start.
	if err := unix.Mknod(filepath.Join(private, "left"), unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatal(err)
	}
	if err := n.Clean(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(private); len(left) != 0 {
		t.Errorf("Clean left %v", left)
	}
}

func TestParseMajMin(t *testing.T) {
	if a, b, err := ParseMajMin("259:3\n"); err != nil || a != 259 || b != 3 {
		t.Errorf("259:3: %d %d %v", a, b, err)
	}
	for _, bad := range []string{"", "8", "8:", "a:1", "8:-1"} {
		if _, _, err := ParseMajMin(bad); err == nil {
			t.Errorf("ParseMajMin(%q) = nil error", bad)
		}
	}
}
