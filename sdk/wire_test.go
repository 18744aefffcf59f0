package sdk_test

import (
	"bytes"
	"os"
	"testing"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
)

// TestWireTable: the Go SDK's codecs against the ABI's wire table
// (abi/testdata/wire.txt, which the host's and every SDK's tests read).
// Every record and dbus row decodes to its text and encodes back to its
// bytes and signature; every bad row is refused. It lives beside the SDK,
// not in sdk/go, so that airlock new does not copy it into a plugin's
// project, where the table is not.
func TestWireTable(t *testing.T) {
	b, err := os.ReadFile("../abi/testdata/wire.txt")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := abi.ParseWireTable(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("wire.txt has no rows")
	}
	for _, r := range rows {
		switch r.Kind {
		case "record":
			rec, err := abi.DecodeRecord(r.Wire)
			if err != nil {
				t.Errorf("%s: %v", r, err)
				continue
			}
			if got := abi.RecordText(rec); got != r.Text {
				t.Errorf("%s: decoded %q, want %q", r, got, r.Text)
			}
			if got := abi.AppendRecord(nil, rec); !bytes.Equal(got, r.Wire) {
				t.Errorf("%s: encoded %x", r, got)
			}
		case "bad-record":
			if _, err := abi.DecodeRecord(r.Wire); err == nil {
				t.Errorf("%s (%s): decoded", r, r.Text)
			}
		case "dbus":
			vals, err := airlock.DecodeDBus(airlock.Signature(r.Sig), r.Wire)
			if err != nil {
				t.Errorf("%s: %v", r, err)
				continue
			}
			if got := airlock.FormatDBus(vals...); got != r.Text {
				t.Errorf("%s: decoded %s, want %s", r, got, r.Text)
			}
			body, err := airlock.EncodeDBusAs(airlock.Signature(r.Sig), vals...)
			if err != nil || !bytes.Equal(body, r.Wire) {
				t.Errorf("%s: re-encoded %x, %v", r, body, err)
			}
		case "bad-dbus": // bad-dbus-host rows are the host's alone
			if vals, err := airlock.DecodeDBus(airlock.Signature(r.Sig), r.Wire); err == nil {
				t.Errorf("%s (%s): decoded to %s", r, r.Text, airlock.FormatDBus(vals...))
			}
		}
	}
}
