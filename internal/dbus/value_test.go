package dbus

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"

	godbus "github.com/godbus/dbus/v5"

	"github.com/airlockhq/airlock/abi"
	airlock "github.com/airlockhq/airlock/sdk/go"
)

// wireTable is the ABI's wire table (abi/testdata/wire.txt), which every
// SDK's tests read too; its dbus rows double as the fuzz seeds.
func wireTable(t testing.TB) []abi.WireRow {
	t.Helper()
	b, err := os.ReadFile("../../abi/testdata/wire.txt")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := abi.ParseWireTable(b)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestWireTable: every dbus row decodes to Go values of exactly its
// signature, whose text is the row's, and encodes back to its bytes; every
// bad-dbus row is refused as invalid.
func TestWireTable(t *testing.T) {
	n := 0
	for _, r := range wireTable(t) {
		switch r.Kind {
		case "dbus":
			n++
			vals, err := decodeBody(r.Sig, r.Wire)
			if err != nil {
				t.Errorf("%s: %v", r, err)
				continue
			}
			if got := godbus.SignatureOf(vals...).String(); got != r.Sig {
				t.Errorf("%s: decoded to Go values of signature %s", r, got)
			}
			if got := wireText(vals); got != r.Text {
				t.Errorf("%s: decoded %s, want %s", r, got, r.Text)
			}
			back, err := encodeBody(r.Sig, vals, 1<<20)
			if err != nil || !bytes.Equal(back, r.Wire) {
				t.Errorf("%s: re-encoded %x, %v", r, back, err)
			}
		case "bad-dbus", "bad-dbus-host":
			n++
			var ve *valueError
			if _, err := decodeBody(r.Sig, r.Wire); !errors.As(err, &ve) {
				t.Errorf("%s (%s): err = %v, want invalid", r, r.Text, err)
			}
		}
	}
	if n == 0 {
		t.Fatal("wire.txt has no dbus rows")
	}
}

// wireText writes decoded values in the wire table's text form, with the
// Go SDK's formatter (its owner) after a change of types.
func wireText(vals []any) string {
	conv := make([]any, len(vals))
	for i, v := range vals {
		conv[i] = sdkValue(reflect.ValueOf(v))
	}
	return airlock.FormatDBus(conv...)
}

// sdkValue is v with godbus's types changed for the Go SDK's.
func sdkValue(v reflect.Value) any {
	switch x := v.Interface().(type) {
	case godbus.ObjectPath:
		return airlock.ObjectPath(x)
	case godbus.Signature:
		return airlock.Signature(x.String())
	case godbus.Variant:
		return airlock.Variant{Sig: airlock.Signature(x.Signature().String()), Value: sdkValue(reflect.ValueOf(x.Value()))}
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Struct:
		n, item := v.Len, v.Index
		if v.Kind() == reflect.Struct {
			n, item = v.NumField, v.Field
		}
		out := make([]any, n())
		for i := range out {
			out[i] = sdkValue(item(i))
		}
		if v.Kind() == reflect.Struct {
			return airlock.Struct(out)
		}
		return out
	case reflect.Map:
		kt := reflect.TypeOf(sdkValue(reflect.Zero(v.Type().Key())))
		m := reflect.MakeMap(reflect.MapOf(kt, reflect.TypeOf((*any)(nil)).Elem()))
		for it := v.MapRange(); it.Next(); {
			m.SetMapIndex(reflect.ValueOf(sdkValue(it.Key())), reflect.ValueOf(sdkValue(it.Value())))
		}
		return m.Interface()
	}
	return v.Interface()
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
	for _, r := range wireTable(f) {
		if r.Kind == "dbus" {
			f.Add(r.Sig, r.Wire)
		}
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
