package probe

import (
	"bytes"
	"fmt"
	"hash/crc32"
)

// Partition tables, read as libblkid's dos and gpt probers read them. All
// offsets and sizes are in 512-byte sectors, as blkid reports them.

// PartEntry is one partition of a table, under blkid's PART_ENTRY_* names.
// It is comparable, so that a Result stays comparable.
type PartEntry struct {
	Scheme string // PART_ENTRY_SCHEME: "dos" or "gpt"
	UUID   string // PART_ENTRY_UUID: GPT unique GUID, or "<disk signature>-<NN>" for dos
	Name   string // PART_ENTRY_NAME: GPT only, UTF-16LE decoded
	Type   string // PART_ENTRY_TYPE: GPT type GUID, or "0x83" for dos
	Flags  uint64 // PART_ENTRY_FLAGS: GPT attributes, dos boot indicator
	Number int    // PART_ENTRY_NUMBER
	Offset uint64 // PART_ENTRY_OFFSET, sectors
	Size   uint64 // PART_ENTRY_SIZE, sectors
	Disk   string // PART_ENTRY_DISK: "major:minor" of the whole disk
}

// ptable is a partition table found on a device.
type ptable struct {
	typ, id string // PTTYPE, PTUUID
	parts   []PartEntry
}

const (
	sectorSize = 512
	// maxLogical bounds the dos extended-partition chain, as blkid's
	// 100 links without a data partition.
	maxLogical   = 100
	gptHeaderMin = 92
	gptEntryMin  = 128
)

func isExtended(t byte) bool { return t == 0x05 || t == 0x0F || t == 0x85 }

// readTable finds a dos or a GPT table at the start of d. ok is false when
// there is none; err is a read error only.
func readTable(d *dev) (*ptable, bool, error) {
	mbr, ok, err := d.get(0, sectorSize)
	if !ok {
		return nil, false, err
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil, false, nil
	}
	pmbr := false
	for i := 0; i < 4; i++ {
		if mbr[446+16*i+4] == 0xEE {
			pmbr = true
		}
	}
	if pmbr {
		return readGPT(d)
	}
	return readDOS(d, mbr)
}

func readDOS(d *dev, mbr []byte) (*ptable, bool, error) {
	if bytes.HasPrefix(mbr, []byte("\xC9\xC2\xD4\xC1")) { // AIX
		return nil, false, nil
	}
	for i := 0; i < 4; i++ {
		if b := mbr[446+16*i]; b != 0 && b != 0x80 {
			return nil, false, nil
		}
	}
	// A FAT boot sector ends in 55 AA too: blkid calls it FAT, not a table.
	if _, isFAT, err := probeVFAT(d); err != nil || isFAT {
		return nil, false, err
	}
	t := &ptable{typ: "dos"}
	sig := le32(mbr, 440)
	if sig != 0 {
		t.id = fmt.Sprintf("%08x", sig)
	}
	entry := func(sec []byte, i int) (typ, boot byte, start, size uint32) {
		e := sec[446+16*i:]
		return e[4], e[0], le32(e, 8), le32(e, 12)
	}
	add := func(no int, typ, boot byte, start, size uint64) {
		p := PartEntry{Scheme: "dos", Type: fmt.Sprintf("0x%x", typ), Flags: uint64(boot), Number: no, Offset: start, Size: size}
		if t.id != "" {
			p.UUID = fmt.Sprintf("%s-%02x", t.id, no)
		}
		t.parts = append(t.parts, p)
	}
	for i := 0; i < 4; i++ {
		if typ, boot, start, size := entry(mbr, i); size != 0 {
			add(i+1, typ, boot, uint64(start), uint64(size))
		}
	}
	next := 5
	for i := 0; i < 4; i++ {
		typ, _, start, size := entry(mbr, i)
		if size == 0 || !isExtended(typ) || start == 0 {
			continue
		}
		exStart, exSize := uint64(start), uint64(size)
		cur, curSize := exStart, exSize
		for links := 0; links < maxLogical; links++ {
			ebr, ok, err := d.get(int64(cur)*sectorSize, sectorSize)
			if err != nil {
				return nil, false, err
			}
			if !ok || ebr[510] != 0x55 || ebr[511] != 0xAA {
				break
			}
			for j := 0; j < 4; j++ {
				typ, boot, s, n := entry(ebr, j)
				abs := cur + uint64(s)
				if n == 0 || isExtended(typ) {
					continue
				}
				if j >= 2 && (uint64(s)+uint64(n) > curSize || abs < exStart || abs+uint64(n) > exStart+exSize) {
					continue
				}
				if t.hasStart(abs) {
					continue // a loop in the chain
				}
				add(next, typ, boot, abs, uint64(n))
				next++
				links = -1 // blkid counts only links without data
			}
			found := false
			for j := 0; j < 4; j++ {
				typ, _, s, n := entry(ebr, j)
				if n != 0 && isExtended(typ) {
					if s == 0 {
						n = 0
					}
					cur, curSize, found = exStart+uint64(s), uint64(n), true
					break
				}
			}
			if !found {
				break
			}
		}
	}
	return t, true, nil
}

func (t *ptable) hasStart(s uint64) bool {
	for _, p := range t.parts {
		if p.Offset == s {
			return true
		}
	}
	return false
}

// readGPT reads the primary GPT header, or the backup at the last sector
// when the primary is damaged.
func readGPT(d *dev) (*ptable, bool, error) {
	last := uint64(d.size/sectorSize) - 1
	t, err := gptAt(d, 1, last)
	if err == nil && t == nil {
		t, err = gptAt(d, last, last)
	}
	if err != nil || t == nil {
		return nil, false, err
	}
	return t, true, nil
}

// gptAt reads one GPT header and its entries; nil when they are invalid.
func gptAt(d *dev, lba, last uint64) (*ptable, error) {
	h, ok, err := d.get(int64(lba)*sectorSize, sectorSize)
	if !ok {
		return nil, err
	}
	if !bytes.Equal(h[:8], []byte("EFI PART")) {
		return nil, nil
	}
	hsz := le32(h, 12)
	if hsz < gptHeaderMin || hsz > sectorSize {
		return nil, nil
	}
	c := append([]byte(nil), h[:hsz]...)
	copy(c[16:20], []byte{0, 0, 0, 0})
	if crc32.ChecksumIEEE(c) != le32(h, 16) || le64(h, 24) != lba {
		return nil, nil
	}
	fu, lu := le64(h, 40), le64(h, 48)
	if fu > last || lu > last || lu < fu {
		return nil, nil
	}
	num, esz := uint64(le32(h, 80)), uint64(le32(h, 84))
	// Real tables hold 128 entries of 128 bytes (16 KiB); an array larger
	// than maxRead is refused rather than read.
	if num == 0 || esz < gptEntryMin || esz%8 != 0 || num*esz > maxRead {
		return nil, nil
	}
	elba := le64(h, 72)
	if elba > last {
		return nil, nil
	}
	arr, ok, err := d.get(int64(elba)*sectorSize, int(num*esz))
	if !ok {
		return nil, err
	}
	if crc32.ChecksumIEEE(arr) != le32(h, 88) {
		return nil, nil
	}
	t := &ptable{typ: "gpt", id: guid(h[56:72])}
	for i := uint64(0); i < num; i++ {
		e := arr[i*esz : i*esz+gptEntryMin]
		if allZero(e[:16]) {
			continue
		}
		first, end := le64(e, 32), le64(e, 40)
		if first < fu || end > lu || end < first {
			continue // outside the usable area, as blkid
		}
		t.parts = append(t.parts, PartEntry{Scheme: "gpt", Type: guid(e[:16]), UUID: guid(e[16:32]),
			Name: utf16Label(e[56:128], false), Flags: le64(e, 48), Number: int(i) + 1,
			Offset: first, Size: end - first + 1})
	}
	return t, nil
}

// guid formats a GPT GUID (first three fields little-endian) in lower case.
func guid(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le32(b, 0), le16(b, 4), le16(b, 6), b[8:10], b[10:16])
}
