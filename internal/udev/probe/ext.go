package probe

import "fmt"

// ext2/3/4 feature bits that decide which name blkid gives a superblock.
const (
	extCompatHasJournal   = 0x0004
	extIncompatFiletype   = 0x0002
	extIncompatRecover    = 0x0004
	extIncompatJournalDev = 0x0008
	extIncompatMetaBG     = 0x0010
	ext2ROCompatSupported = 0x0001 | 0x0002 | 0x0004 // sparse_super, large_file, btree_dir
	ext2IncompatSupported = extIncompatFiletype | extIncompatMetaBG
	ext3IncompatSupported = extIncompatFiletype | extIncompatRecover | extIncompatMetaBG
	extSuperblockOffset   = 1024
)

type extSuper struct {
	b                       []byte
	compat, incompat, rocom uint32
}

func readExt(d *dev) (*extSuper, bool, error) {
	b, ok, err := d.get(extSuperblockOffset, 1024)
	if !ok {
		return nil, false, err
	}
	if b[0x38] != 0x53 || b[0x39] != 0xEF {
		return nil, false, nil
	}
	// The metadata_csum checksum is not verified: blkid 2.38.1 does not,
	// and the kernel, which does, refuses the mount with its own error
	// (see "Why report an ext4 with a bad superblock checksum?" in
	// host/RATIONALE.md).
	return &extSuper{b: b, compat: le32(b, 0x5C), incompat: le32(b, 0x60), rocom: le32(b, 0x64)}, true, nil
}

func (s *extSuper) result(usage string) Result {
	r := Result{Usage: usage}
	if name := s.b[0x78:0x88]; name[0] != 0 {
		r.Label = label(name)
	}
	r.UUID = uuid16(s.b[0x68:0x78])
	r.Version = fmt.Sprintf("%d.%d", le32(s.b, 0x4C), le16(s.b, 0x3E))
	if lg := le32(s.b, 0x18); lg < 22 {
		r.BlockSize = 1024 << lg
	}
	return r
}

func probeJBD(d *dev) (Result, bool, error) {
	s, ok, err := readExt(d)
	if !ok || s.incompat&extIncompatJournalDev == 0 {
		return Result{}, false, err
	}
	return s.result("other"), true, nil
}

// probeExt2 matches a superblock without a journal and with nothing that
// ext2 does not understand.
func probeExt2(d *dev) (Result, bool, error) {
	s, ok, err := readExt(d)
	if !ok || s.compat&extCompatHasJournal != 0 ||
		s.rocom&^ext2ROCompatSupported != 0 || s.incompat&^ext2IncompatSupported != 0 {
		return Result{}, false, err
	}
	return s.result(""), true, nil
}

// probeExt3 matches a journal and nothing beyond ext3's features.
func probeExt3(d *dev) (Result, bool, error) {
	s, ok, err := readExt(d)
	if !ok || s.compat&extCompatHasJournal == 0 ||
		s.rocom&^ext2ROCompatSupported != 0 || s.incompat&^ext3IncompatSupported != 0 {
		return Result{}, false, err
	}
	return s.result(""), true, nil
}

// probeExt4 matches anything with a feature ext3 lacks (extents, 64bit,
// flex_bg, metadata_csum...). Like blkid on a kernel with ext4 and without
// ext4dev, the "test_fs" flag does not make it ext4dev.
func probeExt4(d *dev) (Result, bool, error) {
	s, ok, err := readExt(d)
	if !ok || s.incompat&extIncompatJournalDev != 0 {
		return Result{}, false, err
	}
	if s.rocom&^ext2ROCompatSupported == 0 && s.incompat&^ext3IncompatSupported == 0 {
		return Result{}, false, nil
	}
	return s.result(""), true, nil
}
