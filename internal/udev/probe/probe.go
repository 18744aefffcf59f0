// Package probe reads a block device's superblock and reports its filesystem
// type, label and UUID the way blkid does, so that kernel-mode uevents (which
// carry no ID_FS_* properties) can be matched and mounted by label or UUID.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
)

// Result is what a superblock says about the filesystem on a device.
// Label and UUID are empty when the filesystem has none.
type Result struct {
	Type    string // "vfat", "ext4", ... as blkid's TYPE
	Label   string // blkid's LABEL: raw bytes, trailing whitespace trimmed
	UUID    string // blkid's UUID, in blkid's format for this type
	Usage   string // "filesystem", or "other" for swap and journals
	Version string // blkid's VERSION, when the type has one
	// BlockSize is blkid's BLOCK_SIZE (0: the type reports none).
	BlockSize uint32
	// ISO is what an iso9660 volume says of itself (zero for other types).
	ISO ISOIDs

	PTType string // blkid's PTTYPE: "dos" or "gpt" when the device holds a partition table
	PTUUID string // blkid's PTUUID: dos disk signature (8 hex digits) or GPT disk GUID
	// Part is the device's own entry in its disk's partition table
	// (Scheme "" when it is not a partition or the entry was not found).
	Part PartEntry
}

// Disk is the whole disk that a partition lies on, as sysfs describes the
// partition: blkid reads the partition's PART_ENTRY_* from the disk's table.
type Disk struct {
	R       io.ReaderAt
	Size    int64
	Devno   string // "major:minor" of the disk, for PART_ENTRY_DISK
	Number  int    // sysfs "partition"
	Start   uint64 // sysfs "start", in 512-byte sectors
	Size512 uint64 // sysfs "size" of the partition, in 512-byte sectors
}

// Options are the optional inputs of ProbeWith.
type Options struct {
	// Disk, for a partition, is its whole disk.
	Disk *Disk
	// Log hears, at debug level, each signature skipped because its
	// offset could not be read. nil discards.
	Log *slog.Logger
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
	return ProbeWith(r, size, Options{})
}

// ProbeWith is Probe with a partition's disk and a debug log. A device
// with a partition table and no filesystem gives a Result with PTType
// set and Type empty; a partition gives its Part entry even without a
// filesystem, as blkid -p does.
//
// A read error at one signature's offset skips that signature (a bad
// block at 64 MiB, where btrfs keeps a copy, must not hide the ext4 at 1
// KiB). Only when nothing at all was found and some read failed is the
// read error returned, so that a dead device does not look empty.
func ProbeWith(r io.ReaderAt, size int64, o Options) (Result, error) {
	// blkid ignores devices this small (extended partition stubs).
	if size <= 1024 {
		return Result{}, ErrUnknown
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &dev{r: r, size: size}
	var readErr error
	skip := func(what string, err error) {
		log.LogAttrs(context.Background(), slog.LevelDebug, "probe: signature skipped, its offset cannot be read",
			slog.String("signature", what), slog.String("error", err.Error()))
		if readErr == nil {
			readErr = fmt.Errorf("probe %s: %w", what, err)
		}
	}
	var pt Result
	if t, ok, err := readTable(d); err != nil {
		skip("partition table", err)
	} else if ok {
		pt.PTType, pt.PTUUID = t.typ, t.id
	}
	if o.Disk != nil {
		e, err := partEntry(o.Disk)
		if err != nil {
			skip("partition entry", err)
		}
		pt.Part = e
	}
	res, err := probeFS(d, skip)
	if errors.Is(err, ErrUnknown) && (pt.PTType != "" || pt.Part.Scheme != "") {
		return pt, nil
	}
	if errors.Is(err, ErrUnknown) && readErr != nil {
		return Result{}, readErr
	}
	if err != nil {
		return Result{}, err
	}
	// As libblkid (BLKID_PROBE_FL_IGNORE_PT): a filesystem that cannot
	// share its device hides a partition table there (an exFAT or NTFS
	// boot sector ends in 55 AA too); only iso9660 keeps it (hybrid
	// images). The partition's own entry on its disk is always reported.
	if tolerant(res.Type) {
		res.PTType, res.PTUUID = pt.PTType, pt.PTUUID
	}
	res.Part = pt.Part
	return res, nil
}

// partEntry finds a partition's entry in its disk's table as blkid does:
// by number, start and size, else by start and size.
func partEntry(disk *Disk) (PartEntry, error) {
	t, ok, err := readTable(&dev{r: disk.R, size: disk.Size})
	if !ok {
		return PartEntry{}, err
	}
	var found *PartEntry
	for i := range t.parts {
		p := &t.parts[i]
		if p.Offset != disk.Start || p.Size != disk.Size512 {
			continue
		}
		if p.Number == disk.Number {
			found = p
			break
		}
		if found == nil {
			found = p
		}
	}
	if found == nil {
		return PartEntry{}, nil
	}
	e := *found
	e.Disk = disk.Devno
	return e, nil
}

func tolerant(typ string) bool {
	for _, p := range probers {
		if p.name == typ {
			return p.tolerant
		}
	}
	return false
}

// probeFS runs the superblock probers; skip hears each read error.
func probeFS(d *dev, skip func(string, error)) (Result, error) {
	size := d.size
	var (
		first    Result
		count    int
		intolers int
	)
	for _, p := range probers {
		res, ok, err := p.probe(d)
		if err != nil {
			skip(p.name, err)
			continue
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

// ProbeFile probes an image file or a block device node. For a
// partition's node it also reads the partition's entry (PART_ENTRY_*)
// from its whole disk, opened as /dev/<the disk's DEVNAME>.
func ProbeFile(path string) (Result, error) {
	return ProbeFileWith(path, nil, nil)
}

// OpenDisk gives a path to read the whole disk with kernel name name and
// number major:minor, and a func that releases it.
type OpenDisk func(name string, major, minor uint32) (string, func(), error)

// ProbeFileWith is ProbeFile with the caller's way of reaching a
// partition's disk (nil: /dev/<DEVNAME>) and a debug log (nil: none). A
// disk that cannot be opened leaves Part empty and says why in the log.
func ProbeFileWith(path string, open OpenDisk, log *slog.Logger) (Result, error) {
	// Non-blocking, so that a tape or a drive with no medium does not
	// wait in open.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	// Seek rather than Stat: a block device's Stat size is 0.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return Result{}, fmt.Errorf("probe %s: size: %w", path, err)
	}
	o := Options{Log: log}
	if disk, release, err := diskOf(f, open); err != nil {
		if log != nil {
			log.Debug("probe: no partition entry, the disk cannot be read", "device", path, "error", err.Error())
		}
	} else if disk != nil {
		defer release()
		o.Disk = disk
	}
	res, err := ProbeWith(f, size, o)
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
	return fmt.Errorf("read at %d (%d bytes): %w", off, len(b), err)
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
