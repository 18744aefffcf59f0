//go:build linux

package mount

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/airlockhq/airlock/internal/blockdev"
	"github.com/airlockhq/airlock/internal/devnode"
	"github.com/airlockhq/airlock/internal/testenv"
)

// startHelper runs a FUSE helper the way a host that then crashed left
// it, and waits for its mount at at.
func startHelper(t *testing.T, at string, args ...string) chan struct{} {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { exec.Command("umount", "-l", at).Run(); cmd.Process.Kill(); <-done })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m, _ := mountinfo.Mounted(at); m {
			return done
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v did not mount %s", args, at)
		}
	}
}

// A host that crashed leaves its FUSE mounts and their helpers: the next
// start's reconcile detaches the mounts under the media root (fuseblk
// and fuse mounts alike), the orphaned helpers then exit by themselves,
// and a FUSE mount outside the media root is left alone.
func TestLoopFuseLeftover(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach loop devices and mount them")
	exfat := testenv.NeedCommand(t, "mount.exfat-fuse", "exfat-fuse")
	fusefat := testenv.NeedCommand(t, "fusefat", "fusefat")
	dir := t.TempDir()
	img := tl.MakeImage(t, dir, "left.img", []testenv.Partition{
		{Sfdisk: ",30M,7", FSType: "exfat", Label: "AIRFLE"},
		{Sfdisk: ",,c", FSType: "vfat", Label: "AIRFLV"},
	})
	dev := tl.Attach(t, img, 2)
	base := filepath.Join(dir, "media")
	at := filepath.Join(base, "p", "AIRFLE")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{at, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	left := startHelper(t, at, exfat, "-d", "/dev/"+dev+"p1", at)
	kept := startHelper(t, outside, fusefat, "-f", "-o", "ro", "/dev/"+dev+"p2", outside)

	b, err := newRealBackend(base, &devnode.Nodes{DevDir: "/dev", Dir: filepath.Join(dir, "dev")}, blockdev.New())
	if err != nil {
		t.Fatal(err)
	}
	msgs := b.reconcile(base)
	want := "unmounted " + at + " (fuseblk on /dev/" + dev + "p1)"
	if !slices.Contains(msgs, want) {
		t.Errorf("reconcile said %q, want %q", msgs, want)
	}
	if m, _ := mountinfo.Mounted(at); m {
		t.Errorf("%s still mounted", at)
	}
	if _, err := os.Stat(at); !os.IsNotExist(err) {
		t.Errorf("stale mount point %s: %v", at, err)
	}
	select {
	case <-left:
	case <-time.After(30 * time.Second):
		t.Error("the orphaned helper did not exit after its mount was detached")
	}
	if m, _ := mountinfo.Mounted(outside); !m {
		t.Error("the FUSE mount outside the media root was unmounted")
	}
	select {
	case <-kept:
		t.Error("the helper of the mount outside the media root exited")
	default:
	}
}
