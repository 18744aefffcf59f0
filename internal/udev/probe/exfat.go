package probe

import (
	"bytes"
	"fmt"
)

// exfatMaxLabelEntries bounds the root-directory scan for the label entry.
// libblkid allows 256 MiB of directory; mkfs and every OS put the label
// among the first entries, so 64 Ki entries (2 MiB) is plenty and keeps a
// corrupt image from costing seconds.
const exfatMaxLabelEntries = 64 << 10

func probeExFAT(d *dev) (Result, bool, error) {
	b, ok, err := d.get(0, 512)
	if !ok || !bytes.Equal(b[3:11], []byte("EXFAT   ")) {
		return Result{}, false, err
	}
	if le16(b, 510) != 0xAA55 || !bytes.Equal(b[0:3], []byte{0xEB, 0x76, 0x90}) || !allZero(b[11:64]) {
		return Result{}, false, nil
	}
	bpsShift, spcShift := uint32(b[108]), uint32(b[109])
	// The spec allows 512 B to 4 KiB sectors and 32 MiB clusters.
	if bpsShift < 9 || bpsShift > 12 || bpsShift+spcShift > 25 {
		return Result{}, false, nil
	}
	sector := int64(1) << bpsShift
	// The boot region's checksum covers 11 sectors; the 12th repeats it.
	region, ok, err := d.get(0, int(12*sector))
	if !ok {
		return Result{}, false, err
	}
	var sum uint32
	for i := int64(0); i < 11*sector; i++ {
		if i == 106 || i == 107 || i == 112 { // VolumeFlags and PercentInUse change at run time
			continue
		}
		sum = (sum>>1 | sum<<31) + uint32(region[i])
	}
	for i := 11 * sector; i < 12*sector; i += 4 {
		if le32(region, int(i)) != sum {
			return Result{}, false, nil
		}
	}

	r := Result{UUID: serial4(b[100:104]), Version: fmt.Sprintf("%d.%d", b[105], b[104]), BlockSize: uint32(sector)}
	name, err := exfatLabel(d, b, bpsShift, spcShift)
	if err != nil {
		return Result{}, false, err
	}
	r.Label = name
	return r, true, nil
}

// exfatLabel finds the volume-label entry (type 0x83) in the root
// directory, following the FAT at cluster boundaries.
func exfatLabel(d *dev, b []byte, bpsShift, spcShift uint32) (string, error) {
	fatOffset := int64(le32(b, 80)) << bpsShift
	heap := uint64(le32(b, 88))
	clusterSize := int64(1) << (bpsShift + spcShift)
	cluster := le32(b, 96)
	toOffset := func(c uint32) int64 {
		// uint32 subtraction wraps for a corrupt cluster below 2, like
		// libblkid's; the read then falls outside the device.
		blk := heap + uint64(c-2)<<spcShift
		if blk > 1<<40 {
			return -1
		}
		return int64(blk << bpsShift)
	}
	off := toOffset(cluster)
	for i := 0; i < exfatMaxLabelEntries; i++ {
		e, ok, err := d.get(off, 32)
		if !ok {
			return "", err
		}
		switch e[0] {
		case 0x00:
			return "", nil
		case 0x83:
			n := min(int(e[1])*2, 22)
			return utf16Label(e[2:2+n], false), nil
		}
		off += 32
		if off%clusterSize == 0 {
			f, ok, err := d.get(fatOffset+int64(cluster)*4, 4)
			if !ok {
				return "", err
			}
			cluster = le32(f, 0)
			if cluster < 2 || cluster > 0x0FFFFFF6 {
				return "", nil
			}
			off = toOffset(cluster)
		}
	}
	return "", nil
}
