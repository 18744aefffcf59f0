package abi

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// WireRow is one row of the ABI's wire table, abi/testdata/wire.txt: golden
// records and D-Bus values that the host's codecs and every SDK's decode
// and encode alike (ABI.md, "The wire table"). It is for their tests.
type WireRow struct {
	Line int
	Kind string // "record", "bad-record", "dbus", "bad-dbus" or "bad-dbus-host"
	Sig  string // a D-Bus signature ("" for a record)
	Wire []byte // the record's or body's bytes
	Text string // the value's text form, or why a decoder refuses it
}

func (r WireRow) String() string {
	return fmt.Sprintf("wire.txt:%d %s %q %x", r.Line, r.Kind, r.Sig, r.Wire)
}

// ParseWireTable reads the wire table: one row a line, four fields
// separated by tabs, "-" for an empty one; blank lines and lines that start
// with # are skipped.
func ParseWireTable(table []byte) ([]WireRow, error) {
	var rows []WireRow
	for i, line := range strings.Split(string(table), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("wire.txt:%d: %d fields, want 4 separated by tabs", i+1, len(f))
		}
		for j := range f {
			if f[j] == "-" {
				f[j] = ""
			}
		}
		wire, err := hex.DecodeString(f[2])
		if err != nil {
			return nil, fmt.Errorf("wire.txt:%d: %v", i+1, err)
		}
		switch f[0] {
		case "record", "bad-record", "dbus", "bad-dbus", "bad-dbus-host":
		default:
			return nil, fmt.Errorf("wire.txt:%d: unknown kind %q", i+1, f[0])
		}
		rows = append(rows, WireRow{Line: i + 1, Kind: f[0], Sig: f[1], Wire: wire, Text: f[3]})
	}
	return rows, nil
}

// RecordText is a record's text form in the wire table: key=value, the
// fields separated by ", ".
func RecordText(r Record) string {
	var b strings.Builder
	for i, f := range r {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Key + "=" + string(f.Value))
	}
	return b.String()
}
