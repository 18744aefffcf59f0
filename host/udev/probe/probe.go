// Package probe reads a block device's superblock and reports its filesystem
// type, label and UUID the way blkid does, so that kernel-mode uevents (which
// carry no ID_FS_* properties) can be matched and mounted by label or UUID.
package probe

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Result is what a superblock says about the filesystem on a device.
// Label and UUID are empty when the filesystem has none.
type Result struct {
	Type    string // "vfat", "ext4", ... as blkid's TYPE
	Label   string // blkid's LABEL: raw bytes, trailing whitespace trimmed
	UUID    string // blkid's UUID, in blkid's format for this type
	Usage   string // "filesystem", or "other" for swap and journals
	Version string // blkid's VERSION, when the type has one
}

var (
	// ErrUnknown means that no supported signature was found.
	ErrUnknown = errors.New("probe: no known filesystem signature")
	// ErrAmbiguous means that two signatures matched, as blkid's
	// "ambivalent result": mounting by either could destroy the other.
	ErrAmbiguous = errors.New("probe: more than one filesystem signature (wipe the stale one with wipefs)")
)

// tinySize is blkid's floppy limit: on devices this small the first
// signature wins and ambiguity is not checked.
const tinySize = 1440 * 1024

// prober checks one signature. It returns ok=false when the signature is
// absent or invalid, and an error only when reading failed.
type prober struct {
	name     string
	tolerant bool // may coexist with another signature (iso9660), as blkid's BLKID_IDINFO_TOLERANT
	probe    func(d *dev) (Result, bool, error)
}

// probers run in libblkid's order, so that the first match (which blkid
// reports for tolerant pairs and tiny devices) is the same.
var probers = []prober{
	{name: "vfat", probe: probeVFAT},
	{name: "swsuspend", probe: probeSwsuspend},
	{name: "swap", probe: probeSwap},
	{name: "xfs", probe: probeXFS},
	{name: "ext4", probe: probeExt4},
	{name: "ext3", probe: probeExt3},
	{name: "ext2", probe: probeExt2},
	{name: "jbd", probe: probeJBD},
	{name: "iso9660", tolerant: true, probe: probeISO9660},
	{name: "ntfs", probe: probeNTFS},
	{name: "squashfs", probe: probeSquashfs},
	{name: "squashfs3", probe: probeSquashfs3},
	{name: "btrfs", probe: probeBtrfs},
	{name: "exfat", probe: probeExFAT},
	{name: "f2fs", probe: probeF2FS},
}

// Probe identifies the filesystem on the size bytes readable from r. It
// returns ErrUnknown when nothing matches and ErrAmbiguous when two
// signatures that cannot share a device both match, as blkid -p does.
func Probe(r io.ReaderAt, size int64) (Result, error) {
	// blkid ignores devices this small (extended partition stubs).
	if size <= 1024 {
		return Result{}, ErrUnknown
	}
	d := &dev{r: r, size: size}
	var (
		first    Result
		count    int
		intolers int
	)
	for _, p := range probers {
		res, ok, err := p.probe(d)
		if err != nil {
			return Result{}, fmt.Errorf("probe %s: %w", p.name, err)
		}
		if !ok {
			continue
		}
		res.Type = p.name
		if res.Usage == "" {
			res.Usage = "filesystem"
		}
		if size <= tinySize && count == 0 {
			return res, nil
		}
		count++
		if !p.tolerant {
			intolers++
		}
		if count == 1 {
			first = res
		}
	}
	switch {
	case count == 0:
		return Result{}, ErrUnknown
	case count > 1 && intolers > 0:
		return Result{}, ErrAmbiguous
	}
	return first, nil
}

// ProbeFile probes an image file or a block device node.
func ProbeFile(path string) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	// Seek rather than Stat: a block device's Stat size is 0.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return Result{}, fmt.Errorf("probe %s: size: %w", path, err)
	}
	res, err := Probe(f, size)
	if err != nil {
		return Result{}, fmt.Errorf("probe %s: %w", path, err)
	}
	return res, nil
}

// maxRead bounds every single read, so that a corrupt size field can never
// make us allocate more than this.
const maxRead = 1 << 20

// errOutside marks a read past the device's end: the signature is simply
// not there, which is not an I/O error.
var errOutside = errors.New("read outside device")

// dev is a bounded reader with a one-block cache: the directory scans read
// many 32-byte entries from the same block.
type dev struct {
	r     io.ReaderAt
	size  int64
	blkOK bool
	blkAt int64
	blk   [cacheBlock]byte
}

const cacheBlock = 4096

// read returns n bytes at off. It returns errOutside when the range is not
// on the device or is too large, and the reader's error otherwise. The
// result is always the caller's own copy.
func (d *dev) read(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || n > maxRead || off > d.size || int64(n) > d.size-off {
		return nil, errOutside
	}
	if n <= cacheBlock && off/cacheBlock == (off+int64(n)-1)/cacheBlock {
		base := off - off%cacheBlock
		if !d.blkOK || d.blkAt != base {
			m := int64(cacheBlock)
			if d.size-base < m {
				m = d.size - base
			}
			if err := d.fill(d.blk[:m], base); err != nil {
				d.blkOK = false
				return nil, err
			}
			d.blkOK, d.blkAt = true, base
		}
		return append([]byte(nil), d.blk[off-base:off-base+int64(n)]...), nil
	}
	b := make([]byte, n)
	if err := d.fill(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

func (d *dev) fill(b []byte, off int64) error {
	k, err := d.r.ReadAt(b, off)
	if k == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		// The device is shorter than it said: treat as absent data.
		return errOutside
	}
	return err
}

// get is read for probers: errOutside becomes "not matched", other errors
// are returned.
func (d *dev) get(off int64, n int) ([]byte, bool, error) {
	b, err := d.read(off, n)
	if errors.Is(err, errOutside) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}
