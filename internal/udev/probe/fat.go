package probe

import "bytes"

const (
	fat12Max = 0xFF4
	fat16Max = 0xFFF4
	fat32Max = 0x0FFFFFF6
)

// probeVFAT follows libblkid's vfat prober: the BPB is sanity-checked
// (many non-FAT boot sectors start with a jump), and the label comes from
// the root directory's volume-label entry.
func probeVFAT(d *dev) (Result, bool, error) {
	bs, ok, err := d.get(0, 512)
	if !ok {
		return Result{}, false, err
	}
	strong := bytes.HasPrefix(bs[0x52:], []byte("MSWIN")) ||
		bytes.HasPrefix(bs[0x52:], []byte("FAT32   ")) ||
		bytes.HasPrefix(bs[0x36:], []byte("MSDOS")) ||
		bytes.HasPrefix(bs[0x36:], []byte("FAT16   ")) ||
		bytes.HasPrefix(bs[0x36:], []byte("FAT12   ")) ||
		bytes.HasPrefix(bs[0x36:], []byte("FAT     "))
	weak := bs[0] == 0xEB || bs[0] == 0xE9 || (bs[0x1FE] == 0x55 && bs[0x1FF] == 0xAA)
	if !strong && !weak {
		return Result{}, false, nil
	}
	if !strong {
		// Only a jump or the MBR signature: demand the boot signature and
		// rule out the FAT-like pseudo headers of JFS and HPFS.
		if bs[0x1FE] != 0x55 || bs[0x1FF] != 0xAA {
			return Result{}, false, nil
		}
		if bytes.HasPrefix(bs[0x36:], []byte("JFS     ")) || bytes.HasPrefix(bs[0x36:], []byte("HPFS    ")) {
			return Result{}, false, nil
		}
	}

	clusterSize := uint32(bs[0x0D])
	reserved := uint32(le16(bs, 0x0E))
	fats := uint32(bs[0x10])
	dirEntries := uint32(le16(bs, 0x11))
	media := bs[0x15]
	fatLength16 := uint32(le16(bs, 0x16))
	fat32Length := le32(bs, 0x24)
	sectorSize := uint32(le16(bs, 0x0B))
	if fats == 0 || reserved == 0 || !(media >= 0xF8 || media == 0xF0) || !isPow2(clusterSize) {
		return Result{}, false, nil
	}
	if !isPow2(sectorSize) || sectorSize < 512 || sectorSize > 4096 {
		return Result{}, false, nil
	}
	sectors := uint32(le16(bs, 0x13))
	if sectors == 0 {
		sectors = le32(bs, 0x20)
	}
	fatLength := fatLength16
	if fatLength == 0 {
		fatLength = fat32Length
	}
	// uint32 arithmetic on purpose: libblkid's wraps the same way, and a
	// wrapped count fails the maximum below.
	fatSize := fatLength * fats
	dirSize := (dirEntries*32 + sectorSize - 1) / sectorSize
	clusters := (sectors - (reserved + fatSize + dirSize)) / clusterSize
	maxClusters := uint32(fat12Max)
	switch {
	case fatLength16 == 0 && fat32Length != 0:
		maxClusters = fat32Max
	case clusters > fat12Max:
		maxClusters = fat16Max
	}
	if clusters > maxClusters {
		return Result{}, false, nil
	}

	var res Result
	var volLabel, serial []byte
	if fatLength16 != 0 {
		rootStart := int64(reserved+fatSize) * int64(sectorSize)
		volLabel, err = fatDirLabel(d, rootStart, int64(dirEntries))
		if err != nil {
			return Result{}, false, err
		}
		if bs[0x26] == 0x28 || bs[0x26] == 0x29 { // extended BPB: the serial is valid
			serial = bs[0x27:0x2B]
		}
		switch {
		case clusters < fat12Max:
			res.Version = "FAT12"
		case clusters < fat16Max:
			res.Version = "FAT16"
		}
	} else if fat32Length != 0 {
		clusterBytes := int64(clusterSize) * int64(sectorSize)
		dataStart := int64(reserved) + int64(fatSize)
		entries := uint64(fat32Length) * uint64(sectorSize) / 4
		next := le32(bs, 0x2C)
		// Follow the root directory's cluster chain, at most 100 clusters
		// as libblkid does, so that a FAT loop cannot keep us here.
		for loops := 1; next != 0 && uint64(next) < entries && loops < 100; loops++ {
			off := (dataStart + int64(next-2)*int64(clusterSize)) * int64(sectorSize)
			volLabel, err = fatDirLabel(d, off, clusterBytes/32)
			if err != nil {
				return Result{}, false, err
			}
			if volLabel != nil {
				break
			}
			e, ok, err := d.get(int64(reserved)*int64(sectorSize)+int64(next)*4, 4)
			if err != nil {
				return Result{}, false, err
			}
			if !ok {
				break
			}
			next = le32(e, 0) & 0x0FFFFFFF
		}
		res.Version = "FAT32"
		serial = bs[0x43:0x47]

		// FAT32 must have a valid FSInfo signature, or none at all.
		if fsinfo := int64(le16(bs, 0x30)); fsinfo != 0 {
			fi, ok, err := d.get(fsinfo*int64(sectorSize), 512)
			if !ok {
				return Result{}, false, err
			}
			s1, s2 := fi[0:4], fi[484:488]
			if !bytes.Equal(s1, []byte("RRaA")) && !bytes.Equal(s1, []byte("RRdA")) && !allZero(s1) {
				return Result{}, false, nil
			}
			if !bytes.Equal(s2, []byte("rrAa")) && !allZero(s2) {
				return Result{}, false, nil
			}
		}
	}
	// Only the root-directory entry names the volume: it is what Windows
	// and fatlabel write, while the boot sector's copy goes stale. blkid
	// (since 2.36) reports the boot copy only as LABEL_FATBOOT, which udev
	// does not turn into ID_FS_LABEL, so we do not fall back to it.
	if volLabel != nil {
		res.Label = label(volLabel)
	}
	if serial != nil {
		res.UUID = serial4(serial)
	}
	res.BlockSize = sectorSize
	return res, true, nil
}

// fatDirLabel scans entries 32-byte directory entries at off for the
// volume-label entry and returns its 11 name bytes, or nil.
func fatDirLabel(d *dev, off, entries int64) ([]byte, error) {
	const chunk = 128 // entries per read
	for i := int64(0); i < entries; i += chunk {
		n := min(entries-i, chunk)
		b, err := d.read(off+i*32, int(n*32))
		if err != nil {
			if err == errOutside {
				// Read what is left one entry at a time, as libblkid
				// stops only at the first entry it cannot read.
				return fatDirLabelSlow(d, off+i*32, n)
			}
			return nil, err
		}
		name, done := fatScan(b)
		if name != nil || done {
			return name, nil
		}
	}
	return nil, nil
}

func fatDirLabelSlow(d *dev, off, entries int64) ([]byte, error) {
	for i := int64(0); i < entries; i++ {
		b, ok, err := d.get(off+i*32, 32)
		if !ok {
			return nil, err
		}
		name, done := fatScan(b)
		if name != nil || done {
			return name, nil
		}
	}
	return nil, nil
}

// fatScan looks at whole entries in b. done reports the end-of-directory
// marker.
func fatScan(b []byte) (name []byte, done bool) {
	for ; len(b) >= 32; b = b[32:] {
		e := b[:32]
		if e[0] == 0 {
			return nil, true
		}
		attr := e[11]
		if e[0] == 0xE5 || le16(e, 20) != 0 || le16(e, 26) != 0 || attr&0x3F == 0x0F {
			continue
		}
		if attr&(0x08|0x10) == 0x08 {
			return append([]byte(nil), e[:11]...), false
		}
	}
	return nil, false
}
