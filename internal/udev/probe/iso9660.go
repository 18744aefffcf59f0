package probe

import "bytes"

// ISOIDs are the identifiers of an iso9660 primary volume descriptor
// (merged with Joliet's, as the label is) and the El Torito boot record,
// under blkid's names.
type ISOIDs struct {
	SystemID, VolumeSetID, PublisherID, DataPreparerID, ApplicationID string
	BootSystemID                                                      string
}

const (
	isoStart  = 0x8000 // the volume descriptors follow 16 system sectors
	isoSector = 2048
)

// probeISO9660 reads the primary and Joliet volume descriptors. blkid lets
// iso9660 share a device with another signature (hybrid images), and so
// do we.
func probeISO9660(d *dev) (Result, bool, error) {
	b, ok, err := d.get(isoStart, 16)
	if !ok {
		return Result{}, false, err
	}
	if !bytes.Equal(b[1:6], []byte("CD001")) {
		if bytes.Equal(b[9:14], []byte("CDROM")) {
			hs, ok, err := d.get(isoStart, 80)
			if !ok {
				return Result{}, false, err
			}
			return Result{Version: "High Sierra", Label: label(hs[48:80])}, true, nil
		}
		return Result{}, false, nil
	}

	var pvd, joliet, boot []byte
	for i := int64(0); i < 16; i++ {
		desc, ok, err := d.get(isoStart+i*isoSector, 847)
		if err != nil {
			return Result{}, false, err
		}
		if !ok || desc[0] == 0xFF {
			break
		}
		switch {
		case desc[0] == 0 && boot == nil:
			boot = desc
		case desc[0] == 1 && pvd == nil:
			pvd = desc
		case desc[0] == 2 && joliet == nil:
			esc := desc[88:91]
			if bytes.Equal(esc, []byte("%/@")) || bytes.Equal(esc, []byte("%/C")) || bytes.Equal(esc, []byte("%/E")) {
				joliet = desc
			}
		}
	}
	if pvd == nil {
		return Result{}, false, nil
	}
	r := Result{BlockSize: uint32(le16(pvd, 128))}
	// No volume UUID exists; blkid makes one from the modification date,
	// or the creation date when that is unset.
	if u, set := isoDateUUID(pvd[830:847]); set {
		r.UUID = u
	} else {
		r.UUID, _ = isoDateUUID(pvd[813:830])
	}
	if joliet != nil {
		r.Version = "Joliet Extension"
		if merged := isoMergeLabel(joliet[40:72], pvd[40:72]); merged != nil {
			r.Label = utf16Label(merged, true)
		} else {
			r.Label = utf16Label(joliet[40:72], true)
		}
	} else {
		r.Label = label(pvd[40:72])
	}
	id := func(lo, hi int) string {
		if joliet != nil {
			if merged := isoMergeLabel(joliet[lo:hi], pvd[lo:hi]); merged != nil {
				return utf16Label(merged, true)
			}
		}
		return label(pvd[lo:hi])
	}
	r.ISO = ISOIDs{SystemID: id(8, 40), VolumeSetID: id(190, 318), PublisherID: id(318, 446),
		DataPreparerID: id(446, 574), ApplicationID: id(574, 702)}
	if boot != nil {
		r.ISO.BootSystemID = label(boot[7:39])
	}
	return r, true, nil
}

// isoDateUUID formats a 17-byte ISO 9660 date as blkid's
// YYYY-MM-DD-hh-mm-ss-cc. set is false for the standard's "unset" date.
func isoDateUUID(date []byte) (uuid string, set bool) {
	digits := date[:16]
	if bytes.Count(digits, []byte("0")) == 16 && date[16] == 0 {
		return "", false
	}
	if allZero(digits) {
		return "", true
	}
	var u []byte
	for i, c := range digits {
		if i == 4 || (i > 4 && i%2 == 0) {
			u = append(u, '-')
		}
		u = append(u, c)
	}
	return string(cString(u)), true
}

// isoMergeLabel rebuilds a long label: Joliet holds at most 16 UTF-16
// characters, the primary descriptor up to 32 in a restricted ASCII where
// '_' stands for what it cannot represent. When Joliet's text is a prefix
// of the ASCII one (ignoring case and those '_'), the result is Joliet's
// characters followed by the rest of the ASCII label, as UTF-16BE. It
// returns nil when the two do not agree.
func isoMergeLabel(u16, ascii []byte) []byte {
	out := make([]byte, 0, 2*len(ascii)+4)
	n := len(ascii)
	u, a := 0, 0
	for ; u+1 < n && a < n; u, a = u+2, a+1 {
		if u16[u] >= 0xD8 && u16[u] <= 0xDB && u+3 < n && u16[u+2] >= 0xDC && u16[u+2] <= 0xDF {
			out = append(out, u16[u], u16[u+1])
			u += 2
		}
		hi, lo := u16[u], u16[u+1]
		switch {
		case ascii[a] == '_':
			out = append(out, hi, lo)
		case hi == 0 && lo == '_':
			out = append(out, 0, ascii[a])
		case hi == 0 && upper(ascii[a]) == upper(lo):
			c := ascii[a]
			if c >= 'A' && c <= 'Z' {
				c = lo
			}
			out = append(out, 0, c)
		default:
			return nil
		}
	}
	for ; a < n; a++ {
		out = append(out, 0, ascii[a])
	}
	return out
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}
