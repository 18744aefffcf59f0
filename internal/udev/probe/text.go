package probe

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// isSpace is C's isspace in the C locale, which blkid uses to trim.
func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// cString cuts b at its first NUL, as blkid treats every label as a C string.
func cString(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

func rtrim(b []byte) []byte {
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// label is blkid_probe_set_label: the bytes as they are on disk (no
// charset conversion), up to the first NUL, trailing whitespace trimmed.
func label(b []byte) string {
	return string(rtrim(cString(b)))
}

// utf16Label is blkid_probe_set_utf8label: UTF-16 up to the first NUL code
// unit, converted to UTF-8, trailing whitespace trimmed.
func utf16Label(b []byte, bigEndian bool) string {
	return string(rtrim(utf16ToUTF8(b, bigEndian)))
}

// utf16ToUTF8 decodes like util-linux's ul_encode_to_utf8: a lone surrogate
// is kept as its own 3-byte sequence rather than replaced, so that labels
// compare byte for byte with blkid's.
func utf16ToUTF8(b []byte, bigEndian bool) []byte {
	order := binary.ByteOrder(binary.LittleEndian)
	if bigEndian {
		order = binary.BigEndian
	}
	out := make([]byte, 0, len(b))
	for i := 0; i+2 <= len(b); i += 2 {
		c := rune(order.Uint16(b[i:]))
		if c == 0 {
			break
		}
		if c >= 0xD800 && c <= 0xDBFF && i+4 <= len(b) {
			c2 := rune(order.Uint16(b[i+2:]))
			if c2 >= 0xDC00 && c2 <= 0xDFFF {
				c = utf16.DecodeRune(c, c2)
				i += 2
			}
		}
		switch {
		case c < 0x80:
			out = append(out, byte(c))
		case c < 0x800:
			out = append(out, 0xC0|byte(c>>6), 0x80|byte(c&0x3F))
		case c < 0x10000:
			out = append(out, 0xE0|byte(c>>12), 0x80|byte(c>>6&0x3F), 0x80|byte(c&0x3F))
		default:
			out = append(out, 0xF0|byte(c>>18), 0x80|byte(c>>12&0x3F), 0x80|byte(c>>6&0x3F), 0x80|byte(c&0x3F))
		}
	}
	return out
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// uuid16 formats a DCE UUID as blkid does (lower case); an all-zero UUID
// is no UUID.
func uuid16(b []byte) string {
	if len(b) != 16 || allZero(b) {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// serial4 formats a FAT or exFAT volume serial as blkid does: XXXX-XXXX,
// upper case, most significant byte first.
func serial4(b []byte) string {
	if allZero(b) {
		return ""
	}
	return fmt.Sprintf("%02X%02X-%02X%02X", b[3], b[2], b[1], b[0])
}

func le16(b []byte, off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }
func le32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func le64(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
func be16(b []byte, off int) uint16 { return binary.BigEndian.Uint16(b[off:]) }
func be32(b []byte, off int) uint32 { return binary.BigEndian.Uint32(b[off:]) }
func be64(b []byte, off int) uint64 { return binary.BigEndian.Uint64(b[off:]) }

func isPow2(n uint32) bool { return n != 0 && n&(n-1) == 0 }
