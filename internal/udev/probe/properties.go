package probe

import "fmt"

// Properties returns the result under udev's property names, encoded as
// udev's builtin blkid (and blkid -o udev) encode them: ID_FS_LABEL and
// ID_FS_UUID made safe for shell and paths, the *_ENC forms with unsafe
// bytes as \xNN. Empty values are left out, as udev leaves them out.
func (r Result) Properties() map[string]string {
	p := make(map[string]string, 7)
	if r.Type != "" {
		p["ID_FS_TYPE"] = encodeString(r.Type)
	}
	if r.Usage != "" {
		p["ID_FS_USAGE"] = encodeString(r.Usage)
	}
	if r.Version != "" {
		p["ID_FS_VERSION"] = encodeString(r.Version)
	}
	if r.UUID != "" {
		p["ID_FS_UUID"] = safeString(r.UUID)
		p["ID_FS_UUID_ENC"] = encodeString(r.UUID)
	}
	if r.Label != "" {
		p["ID_FS_LABEL"] = safeString(r.Label)
		p["ID_FS_LABEL_ENC"] = encodeString(r.Label)
	}
	if r.BlockSize != 0 {
		p["ID_FS_BLOCK_SIZE"] = fmt.Sprint(r.BlockSize)
	}
	for _, id := range []struct{ key, v string }{
		{"SYSTEM_ID", r.ISO.SystemID}, {"VOLUME_SET_ID", r.ISO.VolumeSetID}, {"PUBLISHER_ID", r.ISO.PublisherID},
		{"DATA_PREPARER_ID", r.ISO.DataPreparerID}, {"APPLICATION_ID", r.ISO.ApplicationID}, {"BOOT_SYSTEM_ID", r.ISO.BootSystemID},
	} {
		if id.v != "" {
			p["ID_FS_"+id.key] = encodeString(id.v)
		}
	}
	if r.PTType != "" {
		p["ID_PART_TABLE_TYPE"] = r.PTType
	}
	if r.PTUUID != "" {
		p["ID_PART_TABLE_UUID"] = r.PTUUID
	}
	if e := r.Part; e.Scheme != "" {
		// As blkid -o udev: only the name and the type are encoded.
		p["ID_PART_ENTRY_SCHEME"] = e.Scheme
		if e.Name != "" {
			p["ID_PART_ENTRY_NAME"] = encodeString(e.Name)
		}
		if e.UUID != "" {
			p["ID_PART_ENTRY_UUID"] = e.UUID
		}
		p["ID_PART_ENTRY_TYPE"] = encodeString(e.Type)
		if e.Flags != 0 {
			p["ID_PART_ENTRY_FLAGS"] = fmt.Sprintf("0x%x", e.Flags)
		}
		p["ID_PART_ENTRY_NUMBER"] = fmt.Sprint(e.Number)
		p["ID_PART_ENTRY_OFFSET"] = fmt.Sprint(e.Offset)
		p["ID_PART_ENTRY_SIZE"] = fmt.Sprint(e.Size)
		if e.Disk != "" {
			p["ID_PART_ENTRY_DISK"] = e.Disk
		}
	}
	return p
}

// validUTF8Len is libblkid's idea of one valid UTF-8 character at s[0]: its
// length, or 0. It differs from unicode/utf8 on purpose (U+FFFE is
// accepted, the U+FDD0..U+FDEF non-characters are not), so that our
// encoding matches udev's byte for byte.
func validUTF8Len(s string) int {
	c := s[0]
	var n int
	var r rune
	switch {
	case c < 0x80:
		return 1
	case c&0xE0 == 0xC0:
		n, r = 2, rune(c&0x1F)
	case c&0xF0 == 0xE0:
		n, r = 3, rune(c&0x0F)
	case c&0xF8 == 0xF0:
		n, r = 4, rune(c&0x07)
	case c&0xFC == 0xF8:
		n, r = 5, rune(c&0x03)
	case c&0xFE == 0xFC:
		n, r = 6, rune(c&0x01)
	default:
		return 0
	}
	if len(s) < n {
		return 0
	}
	for i := 1; i < n; i++ {
		if s[i]&0xC0 != 0x80 {
			return 0
		}
		r = r<<6 | rune(s[i]&0x3F)
	}
	var want int
	switch {
	case r < 0x80:
		want = 1
	case r < 0x800:
		want = 2
	case r < 0x10000:
		want = 3
	case r < 0x200000:
		want = 4
	case r < 0x4000000:
		want = 5
	default:
		want = 6
	}
	if want != n || r > 0x10FFFF || r&^0x7FF == 0xD800 ||
		(r > 0xFDCF && r < 0xFDF0) || r&0xFFFF == 0xFFFF {
		return 0
	}
	return n
}

func whitelisted(c byte) bool {
	switch {
	case c >= '0' && c <= '9', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		return true
	}
	switch c {
	case '#', '+', '-', '.', ':', '=', '@', '_':
		return true
	}
	return false
}

// encodeString is blkid_encode_string: valid multi-byte UTF-8 and
// [0-9A-Za-z#+-.:=@_] pass, every other byte becomes \xNN.
func encodeString(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if n := validUTF8Len(s[i:]); n > 1 {
			out = append(out, s[i:i+n]...)
			i += n
			continue
		}
		c := s[i]
		if c == '\\' || !whitelisted(c) {
			out = fmt.Appendf(out, `\x%02x`, c)
		} else {
			out = append(out, c)
		}
		i++
	}
	return string(out)
}

// safeString is blkid_safe_string: whitespace trimmed at both ends and
// collapsed inside, then whitespace and invalid UTF-8 bytes become '_'.
func safeString(s string) string {
	// util-linux's __normalize_whitespace: drop leading whitespace, keep
	// only the first of a run, drop one trailing whitespace.
	b := make([]byte, 0, len(s))
	spaces, inText := 0, false
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			spaces++
		} else {
			spaces, inText = 0, true
		}
		if spaces > 1 || (spaces > 0 && !inText) {
			continue
		}
		b = append(b, s[i])
	}
	if spaces > 0 && len(b) > 0 {
		b = b[:len(b)-1]
	}
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c > 0x20 && c <= 0x7E:
			i++
		case isSpace(c):
			b[i] = '_'
			i++
		default:
			if n := validUTF8Len(string(b[i:])); n >= 1 {
				i += n
			} else {
				b[i] = '_'
				i++
			}
		}
	}
	return string(b)
}
