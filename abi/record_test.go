package abi

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// wireRows reads the ABI's wire table (testdata/wire.txt), which every
// SDK's tests read too.
func wireRows(t testing.TB, kind string) []WireRow {
	t.Helper()
	b, err := os.ReadFile("testdata/wire.txt")
	if err != nil {
		t.Fatal(err)
	}
	all, err := ParseWireTable(b)
	if err != nil {
		t.Fatal(err)
	}
	var rows []WireRow
	for _, r := range all {
		if r.Kind == kind {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		t.Fatalf("wire.txt has no %s rows", kind)
	}
	return rows
}

// TestRecordWireTable: every record row of the wire table decodes to its
// text and encodes back to its bytes; every bad-record row is refused.
func TestRecordWireTable(t *testing.T) {
	for _, r := range wireRows(t, "record") {
		rec, err := DecodeRecord(r.Wire)
		if err != nil {
			t.Errorf("%s: %v", r, err)
			continue
		}
		if got := RecordText(rec); got != r.Text {
			t.Errorf("%s: decoded %q, want %q", r, got, r.Text)
		}
		if got := AppendRecord(nil, rec); !bytes.Equal(got, r.Wire) {
			t.Errorf("%s: encoded %x", r, got)
		}
	}
	for _, r := range wireRows(t, "bad-record") {
		if _, err := DecodeRecord(r.Wire); err != ErrMalformed {
			t.Errorf("%s (%s): err = %v, want ErrMalformed", r, r.Text, err)
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
	for _, r := range wireRows(f, "record") {
		f.Add(r.Wire)
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

// TestErrorRecord: an error record gives its message and name; a message
// (from an older host, or an error found before the request was decoded)
// is itself, with no name, even one that happens to decode as a record.
func TestErrorRecord(t *testing.T) {
	for _, c := range []struct {
		b         []byte
		msg, name string
	}{
		{AppendErrorRecord(nil, "org.x.E: no", "org.x.E"), "org.x.E: no", "org.x.E"},
		{AppendErrorRecord(nil, "denied", ""), "denied", ""},
		{[]byte("org.x.E: no"), "org.x.E: no", ""},
		{AppendRecord(nil, Record{{Key: "error_name", Value: []byte("org.x.E")}}), string(AppendRecord(nil, Record{{Key: "error_name", Value: []byte("org.x.E")}})), ""},
	} {
		if msg, name := DecodeErrorRecord(c.b); msg != c.msg || name != c.name {
			t.Errorf("DecodeErrorRecord(%q) = %q, %q; want %q, %q", c.b, msg, name, c.msg, c.name)
		}
	}
}
