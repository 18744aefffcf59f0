package abi

import (
	"encoding/binary"
	"errors"
)

// A Record is the payload encoding of ABI v1: an ordered list of key/value
// pairs. On the wire it is
//
//	u32 count, then count times: u32 key_len, key, u32 value_len, value
//
// with all integers little-endian. Keys are UTF-8; values are bytes. It is
// chosen so that a C or AssemblyScript guest can read it in twenty lines.
type Record []Field

// Field is one key/value pair of a Record.
type Field struct {
	Key   string
	Value []byte
}

// Get returns the value of the first field named key.
func (r Record) Get(key string) (string, bool) {
	for _, f := range r {
		if f.Key == key {
			return string(f.Value), true
		}
	}
	return "", false
}

// MaxRecordFields bounds the field count a decoder accepts, so that a hostile
// count cannot make a decoder allocate without limit.
const MaxRecordFields = 4096

// ErrMalformed is returned for a record whose lengths do not fit its bytes.
var ErrMalformed = errors.New("abi: malformed record")

// AppendRecord appends the encoding of r to dst and returns the result.
func AppendRecord(dst []byte, r Record) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r)))
	for _, f := range r {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(f.Key)))
		dst = append(dst, f.Key...)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(f.Value)))
		dst = append(dst, f.Value...)
	}
	return dst
}

// DecodeRecord decodes b. Values alias b; copy them to keep them past b's life.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) == 0 {
		return nil, nil
	}
	n, b, ok := u32(b)
	if !ok || n > MaxRecordFields || uint64(n)*8 > uint64(len(b)) {
		return nil, ErrMalformed
	}
	r := make(Record, 0, n)
	for i := uint32(0); i < n; i++ {
		var k, v []byte
		if k, b, ok = chunk(b); !ok {
			return nil, ErrMalformed
		}
		if v, b, ok = chunk(b); !ok {
			return nil, ErrMalformed
		}
		r = append(r, Field{Key: string(k), Value: v})
	}
	if len(b) != 0 {
		return nil, ErrMalformed
	}
	return r, nil
}

// A request of airlock_dbus_v1 that holds the field ErrorsField with the
// value ErrorsRecord gets the result of an error as a record (ABI.md
// §3.3.3): ErrorMessage, the message, and for an error from the D-Bus peer
// ErrorName, its D-Bus error name.
const (
	ErrorsField  = "errors"
	ErrorsRecord = "record"
	ErrorMessage = "message"
	ErrorName    = "error_name"
)

// AppendErrorRecord appends the error record of message and name (left out
// when empty) to dst.
func AppendErrorRecord(dst []byte, message, name string) []byte {
	r := Record{{Key: ErrorMessage, Value: []byte(message)}}
	if name != "" {
		r = append(r, Field{Key: ErrorName, Value: []byte(name)})
	}
	return AppendRecord(dst, r)
}

// DecodeErrorRecord reads an error's result: an error record, or (from a
// host before error records, or for an error found before the request was
// decoded) the message itself, with no name. A message is text, so it never
// decodes as a record that starts with ErrorMessage.
func DecodeErrorRecord(b []byte) (message, name string) {
	r, err := DecodeRecord(b)
	if err != nil || len(r) == 0 || r[0].Key != ErrorMessage {
		return string(b), ""
	}
	name, _ = r.Get(ErrorName)
	return string(r[0].Value), name
}

func u32(b []byte) (uint32, []byte, bool) {
	if len(b) < 4 {
		return 0, b, false
	}
	return binary.LittleEndian.Uint32(b), b[4:], true
}

func chunk(b []byte) ([]byte, []byte, bool) {
	n, b, ok := u32(b)
	if !ok || uint64(n) > uint64(len(b)) {
		return nil, b, false
	}
	return b[:n], b[n:], true
}
