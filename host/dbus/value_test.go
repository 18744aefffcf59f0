package dbus

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	godbus "github.com/godbus/dbus/v5"
)

// golden is one value in the ABI encoding: the table doubles as the fuzz
// seeds, as godbus's proto tests do.
var golden = []struct {
	sig, hex string
}{
	{"y", "2a"},
	{"b", "01"},
	{"n", "feff"},
	{"q", "0100"},
	{"i", "ffffffff"},
	{"u", "07000000"},
	{"x", "0100000000000080"},
	{"t", "0000000000010000"},
	{"d", "000000000000f03f"},
	{"s", "0500000068656c6c6f"},
	{"o", "020000002f78"},
	{"g", "020000006169"},
	{"ss", "11000000626c7565746f6f74682e7365727669636507000000" + "7265706c616365"},
	{"as", "02000000010000006101000000" + "62"},
	{"a{sv}", "01000000030000004e54500100000062" + "01"},
	{"(iao)", "0700000001000000020000002f78"},
	{"a(ss)", "00000000"},
	{"v", "02000000617902000000" + "0102"},
	{"a{s(iao)}", "0100000001000000610700000000000000"},
	{"aay", "0200000001000000ff00000000"},
}

func TestGoldenRoundTrip(t *testing.T) {
	for _, g := range golden {
		b, err := hex.DecodeString(g.hex)
		if err != nil {
			t.Fatalf("%s: %v", g.sig, err)
		}
		vals, err := decodeBody(g.sig, b)
		if err != nil {
			t.Errorf("decode %s %s: %v", g.sig, g.hex, err)
			continue
		}
		if got := godbus.SignatureOf(vals...).String(); got != g.sig {
			t.Errorf("decoded %s to Go values of signature %s", g.sig, got)
		}
		back, err := encodeBody(g.sig, vals, 1<<20)
		if err != nil || !bytes.Equal(back, b) {
			t.Errorf("re-encode %s = %x, %v; want %s", g.sig, back, err, g.hex)
		}
	}
}

func TestEncodeBound(t *testing.T) {
	_, err := encodeBody("as", []any{[]string{"aaaaaaaaaa", "bbbbbbbbbb"}}, 16)
	var tl *tooLargeError
	if !errors.As(err, &tl) {
		t.Errorf("err = %v, want tooLargeError", err)
	}
}

// FuzzDecodeBody: any guest bytes decode to values of exactly the declared
// signature, or to an invalid error; never a panic. What decodes encodes
// back to a fixed point.
func FuzzDecodeBody(f *testing.F) {
	for _, g := range golden {
		b, _ := hex.DecodeString(g.hex)
		f.Add(g.sig, b)
	}
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		vals, err := decodeBody(sig, body)
		if err != nil {
			var ve *valueError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a valueError", err)
			}
			return
		}
		if got := godbus.SignatureOf(vals...).String(); got != sig {
			t.Fatalf("signature %q decoded to Go values of %q", sig, got)
		}
		once, err := encodeBody(sig, vals, 1<<24)
		if err != nil {
			t.Fatalf("encode of decoded %q: %v", sig, err)
		}
		vals2, err := decodeBody(sig, once)
		if err != nil {
			t.Fatalf("decode of re-encoded %q: %v", sig, err)
		}
		twice, _ := encodeBody(sig, vals2, 1<<24)
		if !bytes.Equal(once, twice) {
			t.Fatalf("not a fixed point: %x then %x", once, twice)
		}
	})
}
