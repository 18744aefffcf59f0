package dbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"

	godbus "github.com/godbus/dbus/v5"
)

// The value encoding of ABI §3.3 carries D-Bus values across the ABI: a
// D-Bus signature plus the values in signature order, little-endian, with no
// alignment padding:
//
//	y u8 · b u8 (0 or 1) · n i16 · q u16 · i i32 · u u32 · x i64 · t u64 · d f64
//	s o g: u32 length, bytes (s: UTF-8 without NUL; o: an object path; g: a signature)
//	a T: u32 count, then count T · a{K V}: u32 count, then count (K V)
//	(T1...Tn): T1 ... Tn · v: u32 length, a single complete type, then a value of it
//	h (unix fd): not supported
//
// decodeBody turns guest bytes into godbus values of exactly the declared
// types, so that godbus marshals them to that signature; encodeBody turns
// godbus's decoded values back, guided by the signature of the message they
// came in (godbus decodes a struct as []any, so the values alone cannot say
// what an empty array of structs held).

// valueError is an argument the guest encoded wrongly: abi.Invalid.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

func invalidf(format string, args ...any) error { return &valueError{fmt.Sprintf(format, args...)} }

// maxDepth bounds nesting, as the D-Bus spec does (32 arrays plus 32 structs).
const maxDepth = 64

var (
	objectPathType = reflect.TypeOf(godbus.ObjectPath(""))
	signatureType  = reflect.TypeOf(godbus.Signature{})
	variantType    = reflect.TypeOf(godbus.Variant{})
)

// checkSignature validates sig as a D-Bus signature of zero or more complete
// types, without unix fds, and returns the single complete types in it.
func checkSignature(sig string) ([]string, error) {
	if len(sig) > 255 {
		return nil, invalidf("signature %.40q... is longer than 255 bytes", sig)
	}
	if _, err := godbus.ParseSignature(sig); err != nil {
		return nil, invalidf("bad signature %q: %v", sig, err)
	}
	var out []string
	for rest := sig; rest != ""; {
		n, err := completeLen(rest, 0)
		if err != nil {
			return nil, invalidf("bad signature %q: %v", sig, err)
		}
		out = append(out, rest[:n])
		rest = rest[n:]
	}
	return out, nil
}

// completeLen returns the length of the single complete type at the start of s.
func completeLen(s string, depth int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	if s == "" {
		return 0, fmt.Errorf("incomplete type")
	}
	switch s[0] {
	case 'y', 'b', 'n', 'q', 'i', 'u', 'x', 't', 'd', 's', 'o', 'g', 'v':
		return 1, nil
	case 'h':
		return 0, fmt.Errorf("unix fds (h) cannot cross the ABI")
	case 'a':
		if len(s) > 1 && s[1] == '{' {
			if len(s) < 3 || !isBasic(s[2]) {
				return 0, fmt.Errorf("dict key must be a basic type")
			}
			// The spec allows them, but godbus cannot send a map keyed by
			// booleans or signatures (it panics): refuse them here, as
			// invalid, rather than let a guest's message reach it.
			if s[2] == 'b' || s[2] == 'g' {
				return 0, fmt.Errorf("dict keys of type %c are not supported (godbus cannot marshal them); use another key type", s[2])
			}
			n, err := completeLen(s[3:], depth+1)
			if err != nil {
				return 0, err
			}
			if len(s) <= 3+n || s[3+n] != '}' {
				return 0, fmt.Errorf("dict entry must have exactly two types")
			}
			return 4 + n, nil
		}
		n, err := completeLen(s[1:], depth+1)
		return 1 + n, err
	case '(':
		i := 1
		for i < len(s) && s[i] != ')' {
			n, err := completeLen(s[i:], depth+1)
			if err != nil {
				return 0, err
			}
			i += n
		}
		if i >= len(s) || i == 1 {
			return 0, fmt.Errorf("bad struct")
		}
		return i + 1, nil
	}
	return 0, fmt.Errorf("unknown type code %q", s[0])
}

func isBasic(c byte) bool {
	switch c {
	case 'y', 'b', 'n', 'q', 'i', 'u', 'x', 't', 'd', 's', 'o', 'g':
		return true
	}
	return false
}

// decoder reads guest-encoded values.
type decoder struct {
	b     []byte
	types map[string]reflect.Type // goType by signature, built once per body
}

// goType is goType(t), memoized: building a struct type per element made a
// 1 MiB a(yy) cost the host 250 MB of allocations.
func (d *decoder) goType(t string) reflect.Type {
	if rt, ok := d.types[t]; ok {
		return rt
	}
	rt := goType(t)
	d.types[t] = rt
	return rt
}

func (d *decoder) take(n uint64, what string) ([]byte, error) {
	if n > uint64(len(d.b)) {
		return nil, invalidf("body ends inside %s (needs %d more bytes, has %d)", what, n, len(d.b))
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v, nil
}

func (d *decoder) u32(what string) (uint32, error) {
	b, err := d.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// decodeBody decodes a body of signature sig into godbus values.
func decodeBody(sig string, body []byte) ([]any, error) {
	types, err := checkSignature(sig)
	if err != nil {
		return nil, err
	}
	d := &decoder{b: body, types: map[string]reflect.Type{}}
	out := make([]any, 0, len(types))
	for i, t := range types {
		v, err := d.value(t, 0)
		if err != nil {
			return nil, invalidf("argument %d (%s): %v", i, t, err)
		}
		out = append(out, v.Interface())
	}
	if len(d.b) != 0 {
		return nil, invalidf("%d bytes left over after the values of signature %q", len(d.b), sig)
	}
	return out, nil
}

// goType is the Go type that godbus marshals as the single complete type t.
func goType(t string) reflect.Type {
	switch t[0] {
	case 'y':
		return reflect.TypeOf(byte(0))
	case 'b':
		return reflect.TypeOf(false)
	case 'n':
		return reflect.TypeOf(int16(0))
	case 'q':
		return reflect.TypeOf(uint16(0))
	case 'i':
		return reflect.TypeOf(int32(0))
	case 'u':
		return reflect.TypeOf(uint32(0))
	case 'x':
		return reflect.TypeOf(int64(0))
	case 't':
		return reflect.TypeOf(uint64(0))
	case 'd':
		return reflect.TypeOf(float64(0))
	case 's':
		return reflect.TypeOf("")
	case 'o':
		return objectPathType
	case 'g':
		return signatureType
	case 'v':
		return variantType
	case 'a':
		if t[1] == '{' {
			return reflect.MapOf(goType(t[2:3]), goType(t[3:len(t)-1]))
		}
		return reflect.SliceOf(goType(t[1:]))
	case '(':
		var fields []reflect.StructField
		for i, rest := 0, t[1:len(t)-1]; rest != ""; i++ {
			n, _ := completeLen(rest, 0)
			fields = append(fields, reflect.StructField{Name: "F" + strconv.Itoa(i), Type: goType(rest[:n])})
			rest = rest[n:]
		}
		return reflect.StructOf(fields)
	}
	panic("dbus: goType of unchecked signature " + t)
}

// value decodes one value of the single complete type t (already checked).
func (d *decoder) value(t string, depth int) (reflect.Value, error) {
	if depth > maxDepth {
		return reflect.Value{}, invalidf("nested deeper than %d", maxDepth)
	}
	fixed := func(n uint64) ([]byte, error) { return d.take(n, t) }
	switch t[0] {
	case 'y':
		b, err := fixed(1)
		if err != nil {
			return reflect.Value{}, err
		}
		return reflect.ValueOf(b[0]), nil
	case 'b':
		b, err := fixed(1)
		if err != nil {
			return reflect.Value{}, err
		}
		if b[0] > 1 {
			return reflect.Value{}, invalidf("boolean byte is %d, want 0 or 1", b[0])
		}
		return reflect.ValueOf(b[0] == 1), nil
	case 'n', 'q':
		b, err := fixed(2)
		if err != nil {
			return reflect.Value{}, err
		}
		v := binary.LittleEndian.Uint16(b)
		if t[0] == 'n' {
			return reflect.ValueOf(int16(v)), nil
		}
		return reflect.ValueOf(v), nil
	case 'i', 'u':
		b, err := fixed(4)
		if err != nil {
			return reflect.Value{}, err
		}
		v := binary.LittleEndian.Uint32(b)
		if t[0] == 'i' {
			return reflect.ValueOf(int32(v)), nil
		}
		return reflect.ValueOf(v), nil
	case 'x', 't', 'd':
		b, err := fixed(8)
		if err != nil {
			return reflect.Value{}, err
		}
		v := binary.LittleEndian.Uint64(b)
		switch t[0] {
		case 'x':
			return reflect.ValueOf(int64(v)), nil
		case 'd':
			return reflect.ValueOf(math.Float64frombits(v)), nil
		}
		return reflect.ValueOf(v), nil
	case 's', 'o', 'g':
		n, err := d.u32(t + " length")
		if err != nil {
			return reflect.Value{}, err
		}
		b, err := d.take(uint64(n), t)
		if err != nil {
			return reflect.Value{}, err
		}
		s := string(b)
		switch t[0] {
		case 's':
			if !utf8.ValidString(s) || containsNUL(s) {
				return reflect.Value{}, invalidf("string %.40q is not UTF-8 without NUL", s)
			}
			return reflect.ValueOf(s), nil
		case 'o':
			if !godbus.ObjectPath(s).IsValid() {
				return reflect.Value{}, invalidf("%.60q is not a valid object path", s)
			}
			return reflect.ValueOf(godbus.ObjectPath(s)), nil
		}
		if _, err := checkSignature(s); err != nil {
			return reflect.Value{}, err
		}
		sg, _ := godbus.ParseSignature(s)
		return reflect.ValueOf(sg), nil
	case 'v':
		n, err := d.u32("variant signature length")
		if err != nil {
			return reflect.Value{}, err
		}
		b, err := d.take(uint64(n), "variant signature")
		if err != nil {
			return reflect.Value{}, err
		}
		types, err := checkSignature(string(b))
		if err != nil {
			return reflect.Value{}, err
		}
		if len(types) != 1 {
			return reflect.Value{}, invalidf("variant signature %q is not a single complete type", b)
		}
		inner, err := d.value(types[0], depth+1)
		if err != nil {
			return reflect.Value{}, err
		}
		sg, _ := godbus.ParseSignature(types[0])
		return reflect.ValueOf(godbus.MakeVariantWithSignature(inner.Interface(), sg)), nil
	case 'a':
		n, err := d.u32("array count")
		if err != nil {
			return reflect.Value{}, err
		}
		// Every element takes at least one byte, so a count larger than
		// what is left is a lie; checking it first stops allocation bombs.
		if uint64(n) > uint64(len(d.b)) {
			return reflect.Value{}, invalidf("array count %d exceeds the %d bytes left", n, len(d.b))
		}
		if t[1] == '{' {
			kt, vt := t[2:3], t[3:len(t)-1]
			m := reflect.MakeMapWithSize(d.goType(t), int(n))
			for i := uint32(0); i < n; i++ {
				k, err := d.value(kt, depth+1)
				if err != nil {
					return reflect.Value{}, err
				}
				v, err := d.value(vt, depth+1)
				if err != nil {
					return reflect.Value{}, err
				}
				if m.MapIndex(k).IsValid() {
					return reflect.Value{}, invalidf("dict key %v appears twice", k.Interface())
				}
				m.SetMapIndex(k, v)
			}
			return m, nil
		}
		et := t[1:]
		if et == "y" { // bytes: copied, not decoded one by one
			b, _ := d.take(uint64(n), t)
			return reflect.ValueOf(slices.Clone(b)), nil
		}
		s := reflect.MakeSlice(d.goType(t), 0, int(n))
		for i := uint32(0); i < n; i++ {
			v, err := d.value(et, depth+1)
			if err != nil {
				return reflect.Value{}, err
			}
			s = reflect.Append(s, v)
		}
		return s, nil
	case '(':
		st := reflect.New(d.goType(t)).Elem()
		for i, rest := 0, t[1:len(t)-1]; rest != ""; i++ {
			n, _ := completeLen(rest, 0)
			v, err := d.value(rest[:n], depth+1)
			if err != nil {
				return reflect.Value{}, err
			}
			st.Field(i).Set(v)
			rest = rest[n:]
		}
		return st, nil
	}
	return reflect.Value{}, invalidf("unsupported type %q", t)
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// errTooLarge stops an encoding that passed its bound.
type tooLargeError struct{ limit int }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("reply exceeds %d bytes (dbus.max_reply in runtime.toml)", e.limit)
}

// encoder writes values in the ABI encoding, up to a bound.
type encoder struct {
	b     []byte
	limit int
}

// encodeBody encodes godbus-decoded values vs of signature sig, failing with
// a *tooLargeError as soon as the output passes limit.
func encodeBody(sig string, vs []any, limit int) ([]byte, error) {
	types, err := checkSignature(sig)
	if err != nil {
		return nil, fmt.Errorf("peer sent %w", err)
	}
	if len(types) != len(vs) {
		return nil, fmt.Errorf("signature %q has %d types for %d values", sig, len(types), len(vs))
	}
	e := &encoder{limit: limit}
	for i, t := range types {
		if err := e.value(t, reflect.ValueOf(vs[i])); err != nil {
			return nil, err
		}
	}
	return e.b, nil
}

func (e *encoder) grow() error {
	if len(e.b) > e.limit {
		return &tooLargeError{e.limit}
	}
	return nil
}

func (e *encoder) str(s string) error {
	e.b = binary.LittleEndian.AppendUint32(e.b, uint32(len(s)))
	e.b = append(e.b, s...)
	return e.grow()
}

func (e *encoder) value(t string, v reflect.Value) error {
	for v.IsValid() && v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	if !v.IsValid() {
		return fmt.Errorf("no value for %s", t)
	}
	if v.Type() == variantType && t != "v" {
		return fmt.Errorf("variant where %s was expected", t)
	}
	mismatch := func() error { return fmt.Errorf("value of Go type %s for D-Bus type %s", v.Type(), t) }
	switch t[0] {
	case 'y':
		if v.Kind() != reflect.Uint8 {
			return mismatch()
		}
		e.b = append(e.b, byte(v.Uint()))
	case 'b':
		if v.Kind() != reflect.Bool {
			return mismatch()
		}
		var b byte
		if v.Bool() {
			b = 1
		}
		e.b = append(e.b, b)
	case 'n', 'i', 'x':
		switch v.Kind() {
		case reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		default:
			return mismatch()
		}
		switch t[0] {
		case 'n':
			e.b = binary.LittleEndian.AppendUint16(e.b, uint16(v.Int()))
		case 'i':
			e.b = binary.LittleEndian.AppendUint32(e.b, uint32(v.Int()))
		default:
			e.b = binary.LittleEndian.AppendUint64(e.b, uint64(v.Int()))
		}
	case 'q', 'u', 't', 'h':
		switch v.Kind() {
		case reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		default:
			return mismatch()
		}
		switch t[0] {
		case 'q':
			e.b = binary.LittleEndian.AppendUint16(e.b, uint16(v.Uint()))
		case 't':
			e.b = binary.LittleEndian.AppendUint64(e.b, v.Uint())
		default:
			e.b = binary.LittleEndian.AppendUint32(e.b, uint32(v.Uint()))
		}
	case 'd':
		if v.Kind() != reflect.Float64 {
			return mismatch()
		}
		e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v.Float()))
	case 's', 'o':
		if v.Kind() != reflect.String {
			return mismatch()
		}
		return e.str(v.String())
	case 'g':
		s, ok := v.Interface().(godbus.Signature)
		if !ok {
			return mismatch()
		}
		return e.str(s.String())
	case 'v':
		vr, ok := v.Interface().(godbus.Variant)
		if !ok {
			return mismatch()
		}
		sig := vr.Signature().String()
		if err := e.str(sig); err != nil {
			return err
		}
		if _, err := checkSignature(sig); err != nil {
			return err
		}
		return e.value(sig, reflect.ValueOf(vr.Value()))
	case 'a':
		if t[1] == '{' {
			if v.Kind() != reflect.Map {
				return mismatch()
			}
			keys := v.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return lessKey(keys[i], keys[j]) })
			e.b = binary.LittleEndian.AppendUint32(e.b, uint32(len(keys)))
			for _, k := range keys {
				if err := e.value(t[2:3], k); err != nil {
					return err
				}
				if err := e.value(t[3:len(t)-1], v.MapIndex(k)); err != nil {
					return err
				}
			}
			return e.grow()
		}
		if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
			return mismatch()
		}
		e.b = binary.LittleEndian.AppendUint32(e.b, uint32(v.Len()))
		for i := 0; i < v.Len(); i++ {
			if err := e.value(t[1:], v.Index(i)); err != nil {
				return err
			}
			if err := e.grow(); err != nil {
				return err
			}
		}
	case '(':
		var fields []reflect.Value
		switch v.Kind() {
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				fields = append(fields, v.Index(i))
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				fields = append(fields, v.Field(i))
			}
		default:
			return mismatch()
		}
		i := 0
		for rest := t[1 : len(t)-1]; rest != ""; i++ {
			n, _ := completeLen(rest, 0)
			if i >= len(fields) {
				return fmt.Errorf("struct %s has %d fields", t, len(fields))
			}
			if err := e.value(rest[:n], fields[i]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		if i != len(fields) {
			return fmt.Errorf("struct %s has %d fields", t, len(fields))
		}
	default:
		return fmt.Errorf("unsupported type %q", t)
	}
	return e.grow()
}

func lessKey(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.String:
		return a.String() < b.String()
	case reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		return a.Int() < b.Int()
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return a.Uint() < b.Uint()
	case reflect.Float64:
		return a.Float() < b.Float()
	case reflect.Bool:
		return !a.Bool() && b.Bool()
	}
	return false
}
