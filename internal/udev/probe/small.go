package probe

import (
	"bytes"
	"fmt"
	"hash/crc32"
)

// Swap and hibernation images: the signature sits at the end of the first
// page, whatever the page size of the machine that made it.
var swapPageEnds = []int64{0xFF6, 0x1FF6, 0x3FF6, 0x7FF6, 0xFFF6}

const swapMinSize = 10 * 4096

// tuxOnIce writes a valid swap header behind its own magic at 0.
var tuxOnIce = []byte("\xed\xc3\x02\xe9\x98\x56\xe5\x0c")

func swapMagic(d *dev, magics ...string) (string, bool, error) {
	for _, off := range swapPageEnds {
		b, ok, err := d.get(off, 10)
		if err != nil {
			return "", false, err
		}
		if !ok {
			continue
		}
		for _, m := range magics {
			if bytes.HasPrefix(b, []byte(m)) {
				return m, true, nil
			}
		}
	}
	return "", false, nil
}

// swapInfo reads the v1 header at 1024 for label and UUID.
func swapInfo(d *dev, version string) (Result, bool, error) {
	h, ok, err := d.get(1024, 44+118*4)
	if !ok {
		return Result{}, false, err
	}
	if version == "1" {
		if v := le32(h, 0); v != 1 && be32(h, 0) != 1 {
			return Result{}, false, nil
		}
		if le32(h, 4) == 0 {
			return Result{}, false, nil
		}
	}
	r := Result{Usage: "other", Version: version}
	// Old mkswap left garbage here; then label and UUID are not trusted.
	if le32(h, 44+32*4) == 0 && le32(h, 44+33*4) == 0 {
		if h[28] != 0 {
			r.Label = label(h[28:44])
		}
		r.UUID = uuid16(h[12:28])
	}
	return r, true, nil
}

func probeSwap(d *dev) (Result, bool, error) {
	if d.size < swapMinSize {
		return Result{}, false, nil
	}
	m, ok, err := swapMagic(d, "SWAP-SPACE", "SWAPSPACE2")
	if !ok {
		return Result{}, false, err
	}
	if b, ok, err := d.get(0, len(tuxOnIce)); err != nil || (ok && bytes.Equal(b, tuxOnIce)) {
		return Result{}, false, err
	}
	if m == "SWAP-SPACE" {
		return Result{Usage: "other", Version: "0"}, true, nil
	}
	return swapInfo(d, "1")
}

func probeSwsuspend(d *dev) (Result, bool, error) {
	if d.size < swapMinSize {
		return Result{}, false, nil
	}
	b, ok, err := d.get(0, len(tuxOnIce))
	if err != nil {
		return Result{}, false, err
	}
	if ok && bytes.Equal(b, tuxOnIce) {
		return swapInfo(d, "tuxonice")
	}
	m, ok, err := swapMagic(d, "S1SUSPEND", "S2SUSPEND", "ULSUSPEND", "LINHIB0001")
	if !ok {
		return Result{}, false, err
	}
	versions := map[string]string{"S1SUSPEND": "s1suspend", "S2SUSPEND": "s2suspend", "ULSUSPEND": "ulsuspend", "LINHIB0001": "linhib0001"}
	return swapInfo(d, versions[m])
}

func probeSquashfs(d *dev) (Result, bool, error) {
	b, ok, err := d.get(0, 32)
	if !ok || !bytes.Equal(b[0:4], []byte("hsqs")) {
		return Result{}, false, err
	}
	major, minor := le16(b, 28), le16(b, 30)
	if major < 4 {
		return Result{}, false, nil
	}
	return Result{Version: fmt.Sprintf("%d.%d", major, minor)}, true, nil
}

func probeSquashfs3(d *dev) (Result, bool, error) {
	b, ok, err := d.get(0, 32)
	if !ok {
		return Result{}, false, err
	}
	var major, minor uint16
	switch string(b[0:4]) {
	case "sqsh":
		major, minor = be16(b, 28), be16(b, 30)
	case "hsqs":
		major, minor = le16(b, 28), le16(b, 30)
	default:
		return Result{}, false, nil
	}
	if major > 3 {
		return Result{}, false, nil
	}
	return Result{Version: fmt.Sprintf("%d.%d", major, minor)}, true, nil
}

// probeF2FS checks the superblock's CRC-32 (seeded with the magic) when it
// has one, as libblkid does.
func probeF2FS(d *dev) (Result, bool, error) {
	const sbOff = 1024
	b, ok, err := d.get(sbOff, 0x7C+1024)
	if !ok || !bytes.Equal(b[0:4], []byte{0x10, 0x20, 0xF5, 0xF2}) {
		return Result{}, false, err
	}
	major, minor := le16(b, 4), le16(b, 6)
	if major == 1 && minor == 0 {
		// Version 1.0's layout is not known well enough to read more.
		return Result{}, true, nil
	}
	if csumOff := le32(b, 0x20); csumOff != 0 {
		if csumOff > 4096 {
			return Result{}, false, nil
		}
		sb, ok, err := d.get(sbOff, int(csumOff)+4)
		if !ok {
			return Result{}, false, err
		}
		// Raw CRC-32 without the usual pre- and post-inversion.
		sum := ^crc32.Update(^uint32(0xF2F52010), crc32.IEEETable, sb[:csumOff])
		if sum != le32(sb, int(csumOff)) {
			return Result{}, false, nil
		}
	}
	r := Result{Version: fmt.Sprintf("%d.%d", major, minor), UUID: uuid16(b[0x6C:0x7C])}
	if lg := le32(b, 16); lg < 32 {
		r.BlockSize = 1 << lg
	}
	if b[0x7C] != 0 {
		r.Label = utf16Label(b[0x7C:0x7C+1024], false)
	}
	return r, true, nil
}
