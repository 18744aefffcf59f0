package probe

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// A loop device over a FUSE file with bad blocks: at 64 MiB (where btrfs
// keeps a copy, no longer read) the ext4 at 1 KiB is reported, as blkid
// reports it. At other signatures' offsets (iso9660's descriptors at 32
// KiB, btrfs's superblock at 64 KiB) the signature is skipped, the debug
// log says so, and the ext4 is still reported, where blkid 2.38.1 gives
// up on the whole device (a difference on purpose, see the README). A bad
// block under the ext4 superblock itself is a read error, not "no
// filesystem", for both.
func TestProbeBadBlocks(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach a loop device over a failing FUSE file")
	img := makeImage(t, fsCase{name: "bad", cmd: "mkfs.ext4", pkg: "e2fsprogs", size: "128M", args: []string{"-q", "-L", "BADBLK"}})
	for _, c := range []struct {
		name string
		bad  [][2]int64
		want string // "" for a read error
		// skipped: signatures the log must name; blkid 2.38.1 then
		// finds nothing.
		skipped []string
	}{
		{"btrfs-copy-64MiB", [][2]int64{{64 << 20, 64<<20 + 4096}}, "ext4", nil},
		{"iso9660-and-btrfs", [][2]int64{{32 << 10, 36 << 10}, {64 << 10, 68 << 10}, {64 << 20, 64<<20 + 4096}}, "ext4", []string{"iso9660", "btrfs"}},
		{"ext4-superblock", [][2]int64{{0, 4096}}, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := testenv.FaultyFile(t, img, c.bad)
			dev := "/dev/" + tl.Attach(t, path, 0)
			var log bytes.Buffer
			res, err := ProbeFileWith(dev, nil, slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
			udev, rc := blkidExport(t, dev, "udev")
			if c.want == "" {
				if err == nil || errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "input/output error") {
					t.Errorf("ProbeFile = %+v, %v; want the read error", res, err)
				}
				if rc == 0 {
					t.Errorf("blkid -p found %v on a device whose superblock cannot be read", udev)
				}
				return
			}
			if err != nil || res.Type != c.want || res.Label != "BADBLK" {
				t.Fatalf("ProbeFile = %+v, %v; want %s BADBLK\nlog:\n%s", res, err, c.want, &log)
			}
			for _, sig := range c.skipped {
				if !strings.Contains(log.String(), `"probe: signature skipped, its offset cannot be read" signature=`+sig+` error="read at `) {
					t.Errorf("debug log does not name %s as skipped:\n%s", sig, &log)
				}
			}
			switch {
			case len(c.skipped) > 0 && rc != 2:
				t.Errorf("blkid -p exit %d (%v): it used to give up at a read error; update README's difference", rc, udev)
			case len(c.skipped) == 0 && (rc != 0 || udev["ID_FS_TYPE"] != res.Type || udev["ID_FS_UUID"] != res.UUID):
				t.Errorf("blkid -p (exit %d) says %v; probe %+v", rc, udev, res)
			case len(c.skipped) == 0 && log.Len() != 0:
				t.Errorf("nothing should be skipped, the log says:\n%s", &log)
			}
		})
	}
}
