package probe

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sysRoot is where sysfs is mounted; tests do not change it.
const sysRoot = "/sys"

// diskOf returns f's whole disk when f is a partition's block device
// node, from sysfs (partition, start, size and the parent's dev), or nil
// when f is not a partition.
func diskOf(f *os.File, open OpenDisk) (*Disk, func(), error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		return nil, nil, nil
	}
	major, minor := uint32((st.Rdev>>8)&0xfff|(st.Rdev>>32)&^0xfff), uint32(st.Rdev&0xff|(st.Rdev>>12)&^0xff)
	return DiskOf(major, minor, open)
}

// DiskOf returns the whole disk of block device major:minor, opened
// through open (nil: /dev/<the disk's DEVNAME>), with the partition's
// number, start and size from sysfs, and a func that closes it; nil when
// the device is not a partition.
func DiskOf(major, minor uint32, open OpenDisk) (*Disk, func(), error) {
	sys, err := filepath.EvalSymlinks(filepath.Join(sysRoot, "dev", "block", fmt.Sprintf("%d:%d", major, minor)))
	if err != nil {
		return nil, nil, err
	}
	num, err := sysNumber(filepath.Join(sys, "partition"))
	if os.IsNotExist(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	start, err := sysNumber(filepath.Join(sys, "start"))
	if err != nil {
		return nil, nil, err
	}
	sectors, err := sysNumber(filepath.Join(sys, "size"))
	if err != nil {
		return nil, nil, err
	}
	parent := filepath.Dir(sys)
	devno, err := os.ReadFile(filepath.Join(parent, "dev"))
	if err != nil {
		return nil, nil, err
	}
	d := &Disk{Devno: strings.TrimSpace(string(devno)), Number: int(num), Start: start, Size512: sectors}
	dmaj, dmin, ok := strings.Cut(d.Devno, ":")
	ma, err1 := strconv.ParseUint(dmaj, 10, 32)
	mi, err2 := strconv.ParseUint(dmin, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return nil, nil, fmt.Errorf("%s/dev: %q is not major:minor", parent, d.Devno)
	}
	name := filepath.Base(parent)
	if open == nil {
		open = func(name string, _, _ uint32) (string, func(), error) {
			node := "/dev/" + name
			if ue, err := os.ReadFile(filepath.Join(parent, "uevent")); err == nil {
				for _, l := range strings.Split(string(ue), "\n") {
					if v, ok := strings.CutPrefix(l, "DEVNAME="); ok {
						node = "/dev/" + v
					}
				}
			}
			return node, func() {}, nil
		}
	}
	p, release, err := open(name, uint32(ma), uint32(mi))
	if err != nil {
		return nil, nil, err
	}
	df, err := os.Open(p)
	if err != nil {
		release()
		return nil, nil, err
	}
	if d.Size, err = df.Seek(0, io.SeekEnd); err != nil {
		df.Close()
		release()
		return nil, nil, err
	}
	d.R = df
	return d, func() { df.Close(); release() }, nil
}

func sysNumber(p string) (uint64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}
