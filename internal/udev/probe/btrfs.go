package probe

import "bytes"

// btrfs keeps its superblock at 64 KiB. The copies at 64 MiB and 256 GiB
// are not read: blkid 2.38.1 does not, and the kernel mounts only from the
// first (see "Why not a btrfs backup superblock?" in host/RATIONALE.md).
var btrfsOffsets = []int64{64 << 10}

func probeBtrfs(d *dev) (Result, bool, error) {
	if d.size < 1<<20 {
		return Result{}, false, nil
	}
	for _, off := range btrfsOffsets {
		b, ok, err := d.get(off, 0x12B+256)
		if err != nil {
			return Result{}, false, err
		}
		if !ok || !bytes.Equal(b[0x40:0x48], []byte("_BHRfS_M")) {
			continue
		}
		var r Result
		if b[0x12B] != 0 {
			r.Label = label(b[0x12B : 0x12B+256])
		}
		r.UUID = uuid16(b[0x20:0x30])
		r.BlockSize = le32(b, 0x90)
		return r, true, nil
	}
	return Result{}, false, nil
}
