package probe

import (
	"fmt"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// checkPartsAgainstBlkid probes node and compares every ID_PART_* and
// ID_FS_TYPE/LABEL/UUID property with blkid -p -o udev on the same node.
func checkPartsAgainstBlkid(t *testing.T, node string) Result {
	t.Helper()
	got, err := ProbeFile(node)
	if err != nil {
		t.Fatalf("ProbeFile(%s): %v", node, err)
	}
	udev, rc := blkidExport(t, node, "udev")
	if rc != 0 {
		t.Fatalf("blkid -p %s: exit %d", node, rc)
	}
	keep := func(k string) bool {
		return strings.HasPrefix(k, "ID_PART_") || k == "ID_FS_TYPE" || k == "ID_FS_LABEL" || k == "ID_FS_UUID"
	}
	props := got.Properties()
	for k, v := range udev {
		if keep(k) && props[k] != v {
			t.Errorf("%s: Properties()[%s] = %q, blkid -o udev says %q", node, k, props[k], v)
		}
	}
	for k, v := range props {
		if _, ok := udev[k]; keep(k) && !ok {
			t.Errorf("%s: Properties() has %s=%q that blkid -o udev lacks", node, k, v)
		}
	}
	return got
}

// GPT and MBR disks with several partitions on real loop devices
// (partition scan on), each node probed in its disk's context and compared
// with blkid -p -o udev: PTTYPE and PTUUID on the disk, PART_ENTRY_* on
// each partition (UTF-16 names, GPT attribute flags, the dos boot flag,
// logical partitions 5 and 6 in an extended one).
func TestPartitionTablesAgainstBlkid(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach partitioned loop devices")
	mkfs := testenv.NeedCommand(t, "mkfs.ext4", "e2fsprogs")
	cases := []struct {
		name, script string
		parts        []int // partition numbers to compare (not the extended one)
		want         map[string]string
	}{
		{name: "gpt", script: "label: gpt\nlabel-id: 01234567-89AB-CDEF-0123-456789ABCDEF\n" +
			"size=8M, type=L, name=\"AIR data\"\n" +
			"size=8M, type=L, name=\"Ünï  part \", uuid=AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE, attrs=\"RequiredPartition GUID:63\"\n" +
			"type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n",
			parts: []int{1, 2, 3},
			want:  map[string]string{"ID_PART_TABLE_TYPE": "gpt", "ID_PART_TABLE_UUID": "01234567-89ab-cdef-0123-456789abcdef"}},
		{name: "dos", script: "label: dos\nlabel-id: 0x1a2b3c4d\n,8M,83,*\n,8M,c\n,4M,83\n,,E\n,4M,83\n,4M,7\n",
			parts: []int{1, 2, 3, 5, 6},
			want:  map[string]string{"ID_PART_TABLE_TYPE": "dos", "ID_PART_TABLE_UUID": "1a2b3c4d"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := tl.PartitionImage(t, t.TempDir(), "disk.img", 64<<20, c.script)
			dev := tl.Attach(t, img, c.parts[len(c.parts)-1])
			testenv.Run(t, mkfs, "-q", "-L", "AIRPT", fmt.Sprintf("/dev/%sp1", dev))
			disk := checkPartsAgainstBlkid(t, "/dev/"+dev)
			for k, v := range c.want {
				if disk.Properties()[k] != v {
					t.Errorf("disk: %s = %q, want %q", k, disk.Properties()[k], v)
				}
			}
			for _, n := range c.parts {
				got := checkPartsAgainstBlkid(t, fmt.Sprintf("/dev/%sp%d", dev, n))
				if got.Part.Number != n || got.Part.Scheme != c.name {
					t.Errorf("p%d: entry %+v", n, got.Part)
				}
			}
		})
	}
}
