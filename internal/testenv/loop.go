package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Partition is one partition of a loop-device test image: its sfdisk line
// (",16M,c"), the filesystem mkfs makes on it and its label. UUID is
// filled in from blkid after mkfs. No FSType means no filesystem: the dos
// extended partition (",,E") that holds partitions 5 and up.
type Partition struct {
	Sfdisk, FSType, Label string
	UUID                  string
}

// Loop holds the paths of the commands that loop-device tests run.
type Loop struct{ Losetup, Sfdisk, Partx, Blkid string }

// NeedLoop checks for root, the loop driver and the tools, or calls
// Missing. why says what the test does with them.
func NeedLoop(t testing.TB, why string) Loop {
	t.Helper()
	NeedRoot(t, why)
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		Missing(t, "/dev/loop-control (load the loop driver: modprobe loop)")
	}
	return Loop{
		Losetup: NeedCommand(t, "losetup", "mount"),
		Sfdisk:  NeedCommand(t, "sfdisk", "fdisk"),
		Partx:   NeedCommand(t, "partx", "util-linux"),
		Blkid:   NeedCommand(t, "blkid", "util-linux"),
	}
}

// Run runs a command and returns its trimmed output, or fails t.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return strings.TrimSpace(string(b))
}

// Attach sets up a loop device with partitions and returns its name
// ("loop3"); it is detached when the test ends. Kernels built without
// partition-table parsers (this CI's has no CONFIG_MSDOS_PARTITION) ignore
// losetup -P, so partx adds the partitions through BLKPG, which sends the
// same kernel add events.
func (l Loop) Attach(t testing.TB, img string, parts int) string {
	t.Helper()
	dev := Run(t, l.Losetup, "-P", "-f", "--show", img)
	name := filepath.Base(dev)
	t.Cleanup(func() { exec.Command(l.Losetup, "-d", dev).Run() })
	if _, err := os.Stat(fmt.Sprintf("/sys/class/block/%sp1", name)); err != nil && parts > 0 {
		Run(t, l.Partx, "-a", dev)
	}
	for i := 1; i <= parts; i++ {
		WaitPath(t, fmt.Sprintf("/dev/%sp%d", name, i), true)
	}
	return name
}

// Detach detaches a loop device and waits for its first partition to go.
func (l Loop) Detach(t testing.TB, name string) {
	t.Helper()
	Run(t, l.Losetup, "-d", "/dev/"+name)
	WaitPath(t, fmt.Sprintf("/sys/class/block/%sp1", name), false)
}

// WaitPath waits for a path to appear or go (a liveness bound only).
func WaitPath(t testing.TB, p string, present bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(p); (err == nil) == present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: present=%v never came", p, present)
		}
	}
}

// MakeImage writes a 64 MiB image (see MakeSizedImage).
func (l Loop) MakeImage(t testing.TB, dir, file string, parts []Partition) string {
	t.Helper()
	return l.MakeSizedImage(t, dir, file, 64<<20, parts)
}

// PartitionImage writes a sparse image of size bytes in dir, partitioned
// by an sfdisk script ("label: gpt\nsize=8M, name=\"A\"\n"), without
// filesystems, and returns its path.
func (l Loop) PartitionImage(t testing.TB, dir, file string, size int64, script string) string {
	t.Helper()
	img := filepath.Join(dir, file)
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(l.Sfdisk, "-q", img)
	cmd.Stdin = strings.NewReader(script)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, b)
	}
	return img
}

// MakeSizedImage writes a sparse image of size bytes in dir with one
// partition per entry of parts, made by the real mkfs tools, and fills in
// each UUID as blkid reads it. Entry i is partition i+1, so an extended
// partition, if any, is the fourth entry (the logical ones that follow it
// are 5, 6, ...). The image is left detached.
func (l Loop) MakeSizedImage(t testing.TB, dir, file string, size int64, parts []Partition) string {
	t.Helper()
	script := "label: dos\n"
	for i, p := range parts {
		if p.FSType == "" && i != 3 {
			t.Fatalf("MakeSizedImage: partition %d has no filesystem; only the fourth (extended) may have none", i+1)
		}
		script += p.Sfdisk + "\n"
	}
	img := l.PartitionImage(t, dir, file, size, script)
	name := l.Attach(t, img, len(parts))
	for i := range parts {
		p := &parts[i]
		node := fmt.Sprintf("/dev/%sp%d", name, i+1)
		if p.FSType == "" {
			continue
		}
		Mkfs(t, p.FSType, p.Label, node)
		p.UUID = Run(t, l.Blkid, "-p", "-o", "value", "-s", "UUID", node)
	}
	l.Detach(t, name)
	return img
}

// Mkfs makes a filesystem of fstype labelled label on node (a device or an
// image file) with the real mkfs tool.
func Mkfs(t testing.TB, fstype, label, node string) {
	t.Helper()
	switch fstype {
	case "vfat":
		Run(t, NeedCommand(t, "mkfs.vfat", "dosfstools"), "-n", label, node)
	case "ext4":
		Run(t, NeedCommand(t, "mkfs.ext4", "e2fsprogs"), "-q", "-L", label, node)
	case "exfat":
		Run(t, NeedCommand(t, "mkfs.exfat", "exfatprogs"), "-L", label, node)
	case "ntfs":
		Run(t, NeedCommand(t, "mkfs.ntfs", "ntfs-3g"), "-Q", "-F", "-L", label, node)
	case "xfs":
		// mkfs.xfs refuses a partition under 300 MiB.
		Run(t, NeedCommand(t, "mkfs.xfs", "xfsprogs"), "-q", "-L", label, node)
	case "btrfs":
		Run(t, NeedCommand(t, "mkfs.btrfs", "btrfs-progs"), "-q", "-L", label, node)
	default:
		t.Fatalf("Mkfs: no mkfs for %q", fstype)
	}
}

// MakeSuperfloppy writes a sparse image of size bytes with a filesystem on
// the whole of it and no partition table, as many sticks and cards come,
// and returns its path and the UUID blkid reads. Attach it with parts 0.
func (l Loop) MakeSuperfloppy(t testing.TB, dir, file string, size int64, fstype, label string) (img, uuid string) {
	t.Helper()
	img = filepath.Join(dir, file)
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	Mkfs(t, fstype, label, img)
	return img, Run(t, l.Blkid, "-p", "-o", "value", "-s", "UUID", img)
}
