package abi

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// golden wire bytes, reused as fuzz seeds.
var recordCases = []struct {
	name string
	rec  Record
	wire string
}{
	{"empty", Record{}, "00000000"},
	{"one", Record{{Key: "name", Value: []byte("tick")}}, "01000000" + "04000000" + hex.EncodeToString([]byte("name")) + "04000000" + hex.EncodeToString([]byte("tick"))},
	{"empty value", Record{{Key: "k", Value: []byte{}}}, "01000000" + "01000000" + "6b" + "00000000"},
	{"repeated key", Record{{Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte("2")}}, "02000000" + "01000000" + "61" + "01000000" + "31" + "01000000" + "61" + "01000000" + "32"},
}

func TestRecordGolden(t *testing.T) {
	for _, c := range recordCases {
		got := hex.EncodeToString(AppendRecord(nil, c.rec))
		if got != c.wire {
			t.Errorf("%s: encoded %s, want %s", c.name, got, c.wire)
		}
		b, _ := hex.DecodeString(c.wire)
		r, err := DecodeRecord(b)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(r) != len(c.rec) {
			t.Fatalf("%s: decoded %d fields, want %d", c.name, len(r), len(c.rec))
		}
		for i := range r {
			if r[i].Key != c.rec[i].Key || !bytes.Equal(r[i].Value, c.rec[i].Value) {
				t.Errorf("%s: field %d = %q=%q", c.name, i, r[i].Key, r[i].Value)
			}
		}
	}
}

func TestRecordMalformed(t *testing.T) {
	for name, wire := range map[string]string{
		"short count":     "0100",
		"count overruns":  "05000000",
		"key overruns":    "01000000" + "ff000000" + "61",
		"value overruns":  "01000000" + "01000000" + "61" + "02000000" + "31",
		"trailing bytes":  "00000000" + "00",
		"too many fields": "ffffff7f",
	} {
		b, _ := hex.DecodeString(wire)
		if _, err := DecodeRecord(b); err != ErrMalformed {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestErrnoNames(t *testing.T) {
	for e := OK; e <= NoResult; e++ {
		if s := e.String(); s == "" || strings.HasPrefix(s, "errno(") {
			t.Errorf("errno %d has no name", e)
		}
	}
	if Errno(99).String() != "errno(99)" {
		t.Errorf("unknown errno = %q", Errno(99).String())
	}
	if EventUdev.String() != "udev" || EventKind(42).String() != "event(42)" {
		t.Error("event kind names")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, c := range recordCases {
		b, _ := hex.DecodeString(c.wire)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		if len(b) > 0 && !bytes.Equal(AppendRecord(nil, r), b) {
			t.Fatalf("round trip changed %x", b)
		}
	})
}
