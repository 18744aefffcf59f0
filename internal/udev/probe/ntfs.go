package probe

import (
	"bytes"
	"fmt"
)

// ntfsMaxRecord bounds an MFT record. Real volumes use 1 KiB or 4 KiB; the
// boot sector's encoding could ask for up to 2 GiB.
const ntfsMaxRecord = 64 << 10

// probeNTFS reads the boot sector, then MFT record 3 ($Volume) for its
// $VOLUME_NAME attribute, as libblkid does.
func probeNTFS(d *dev) (Result, bool, error) {
	b, ok, err := d.get(0, 512)
	if !ok || !bytes.Equal(b[3:11], []byte("NTFS    ")) {
		return Result{}, false, err
	}
	sectorSize := uint32(le16(b, 0x0B))
	spc := uint32(b[0x0D])
	if sectorSize < 256 || sectorSize > 4096 || !isPow2(spc) || spc > 128 ||
		sectorSize*spc > 64<<10 {
		return Result{}, false, nil
	}
	// Fields that FAT uses must be zero on NTFS.
	if le16(b, 0x0E) != 0 || le16(b, 0x11) != 0 || le16(b, 0x13) != 0 ||
		le16(b, 0x16) != 0 || le32(b, 0x20) != 0 || b[0x10] != 0 {
		return Result{}, false, nil
	}
	cpr := int8(b[0x40])
	if u := uint8(cpr); u < 0xE1 || u > 0xF7 {
		switch cpr {
		case 1, 2, 4, 8, 16, 32, 64:
		default:
			return Result{}, false, nil
		}
	}
	var recSize uint64
	if cpr > 0 {
		recSize = uint64(cpr) * uint64(spc) * uint64(sectorSize)
	} else {
		recSize = 1 << uint(-int(cpr))
	}
	nrClusters := le64(b, 0x28) / uint64(spc)
	mft, mftMirror := le64(b, 0x30), le64(b, 0x38)
	if mft > nrClusters || mftMirror > nrClusters {
		return Result{}, false, nil
	}
	if recSize > ntfsMaxRecord {
		return Result{}, false, nil
	}
	mftOff := mft * uint64(sectorSize) * uint64(spc)
	if mftOff > 1<<62 {
		return Result{}, false, nil
	}
	rec0, ok, err := d.get(int64(mftOff), int(recSize))
	if !ok || !bytes.Equal(rec0[0:4], []byte("FILE")) {
		return Result{}, false, err
	}
	rec, ok, err := d.get(int64(mftOff+3*recSize), int(recSize))
	if !ok || !bytes.Equal(rec[0:4], []byte("FILE")) {
		return Result{}, false, err
	}

	var r Result
	if serial := b[0x48:0x50]; !allZero(serial) {
		r.UUID = fmt.Sprintf("%016X", le64(serial, 0))
	}
	r.Label = ntfsVolumeName(rec)
	r.BlockSize = sectorSize
	return r, true, nil
}

// ntfsVolumeName walks the attributes of the $Volume record for
// $VOLUME_NAME (0x60). Unlike libblkid it first undoes the update-sequence
// fixups, which only matters if the name straddles a sector end.
func ntfsVolumeName(rec []byte) string {
	if len(rec) < 0x30 {
		return ""
	}
	ntfsFixup(rec)
	attrOff := uint64(le16(rec, 0x14))
	allocated := uint64(le32(rec, 0x1C))
	size := uint64(len(rec))
	for attrOff < size && attrOff <= allocated {
		if attrOff+24 > size {
			return ""
		}
		a := rec[attrOff:]
		typ, alen := le32(a, 0), uint64(le32(a, 4))
		if alen == 0 || typ == 0xFFFFFFFF {
			return ""
		}
		if typ == 0x60 {
			valOff, valLen := uint64(le16(a, 0x14)), uint64(le32(a, 0x10))
			if attrOff+valOff+valLen > size {
				return ""
			}
			return utf16Label(a[valOff:valOff+valLen], false)
		}
		attrOff += alen
	}
	return ""
}

// ntfsFixup restores the last two bytes of each sector of a multi-sector
// record from its update-sequence array, where the driver saved them.
func ntfsFixup(rec []byte) {
	usaOff, usaCount := int(le16(rec, 4)), int(le16(rec, 6))
	stride := 512 // NTFS fixups are per 512 bytes whatever the sector size
	if usaCount < 2 || usaOff+2*usaCount > len(rec) || (usaCount-1)*stride > len(rec) {
		return
	}
	usn := rec[usaOff : usaOff+2]
	for i := 1; i < usaCount; i++ {
		end := i*stride - 2
		if rec[end] != usn[0] || rec[end+1] != usn[1] {
			return // torn record: leave it as it is, like libblkid
		}
		copy(rec[end:end+2], rec[usaOff+2*i:usaOff+2*i+2])
	}
}
