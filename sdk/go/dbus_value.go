package airlock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
)

// ObjectPath is a D-Bus object path ("o").
type ObjectPath string

// Signature is a D-Bus type signature ("g").
type Signature string

// Variant is a D-Bus variant ("v"): a value with its own signature.
type Variant struct {
	Sig   Signature
	Value any
}

// MakeVariant wraps v, inferring its signature as Call does.
func MakeVariant(v any) Variant {
	s, _ := SignatureOf(v)
	return Variant{Sig: s, Value: v}
}

func (v Variant) String() string { return fmt.Sprintf("%s %v", v.Sig, v.Value) }

// Struct is a D-Bus struct ("(...)"): decoded structs arrive as Struct, and
// a Struct can be passed where a Go struct type would be awkward.
type Struct []any

// SignatureOf returns the D-Bus signature of Go values, as godbus infers
// it: bool b, uint8 y, int16 n, uint16 q, int32 and int i, uint32 and uint
// u, int64 x, uint64 t, float64 d, string s, ObjectPath o, Signature g,
// Variant v, []T aT, map[K]V a{KV}, Go structs and Struct (...), and any v.
func SignatureOf(vals ...any) (Signature, error) {
	var b strings.Builder
	for _, v := range vals {
		if err := sigOf(&b, reflect.ValueOf(v), 0); err != nil {
			return "", err
		}
	}
	return Signature(b.String()), nil
}

var (
	objectPathT = reflect.TypeOf(ObjectPath(""))
	signatureT  = reflect.TypeOf(Signature(""))
	variantT    = reflect.TypeOf(Variant{})
	structT     = reflect.TypeOf(Struct(nil))
	anyT        = reflect.TypeOf((*any)(nil)).Elem()
)

func sigOf(b *strings.Builder, v reflect.Value, depth int) error {
	if !v.IsValid() {
		return errors.New("dbus: nil has no D-Bus type")
	}
	return sigOfType(b, v.Type(), v, depth)
}

// sigOfType writes the signature of t; v (possibly invalid) is consulted
// for Struct, whose element types only a value tells.
func sigOfType(b *strings.Builder, t reflect.Type, v reflect.Value, depth int) error {
	if depth > 64 {
		return errors.New("dbus: value nested too deep")
	}
	switch t {
	case objectPathT:
		b.WriteByte('o')
		return nil
	case signatureT:
		b.WriteByte('g')
		return nil
	case variantT, anyT:
		b.WriteByte('v')
		return nil
	case structT:
		if !v.IsValid() || v.Len() == 0 {
			return errors.New("dbus: an empty Struct has no D-Bus type")
		}
		b.WriteByte('(')
		for i := 0; i < v.Len(); i++ {
			if err := sigOf(b, v.Index(i).Elem(), depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(')')
		return nil
	}
	switch t.Kind() {
	case reflect.Bool:
		b.WriteByte('b')
	case reflect.Uint8:
		b.WriteByte('y')
	case reflect.Int16:
		b.WriteByte('n')
	case reflect.Uint16:
		b.WriteByte('q')
	case reflect.Int32, reflect.Int:
		b.WriteByte('i')
	case reflect.Uint32, reflect.Uint:
		b.WriteByte('u')
	case reflect.Int64:
		b.WriteByte('x')
	case reflect.Uint64:
		b.WriteByte('t')
	case reflect.Float64:
		b.WriteByte('d')
	case reflect.String:
		b.WriteByte('s')
	case reflect.Slice, reflect.Array:
		b.WriteByte('a')
		var ev reflect.Value
		if t.Elem() == structT && v.IsValid() && v.Len() > 0 {
			ev = v.Index(0)
		}
		return sigOfType(b, t.Elem(), ev, depth+1)
	case reflect.Map:
		b.WriteString("a{")
		if err := sigOfType(b, t.Key(), reflect.Value{}, depth+1); err != nil {
			return err
		}
		if !strings.ContainsRune("ybnqiuxtdsog", rune(b.String()[b.Len()-1])) {
			return fmt.Errorf("dbus: map key type %s is not a basic D-Bus type", t.Key())
		}
		if err := sigOfType(b, t.Elem(), reflect.Value{}, depth+1); err != nil {
			return err
		}
		b.WriteByte('}')
	case reflect.Struct:
		if t.NumField() == 0 {
			return fmt.Errorf("dbus: empty struct %s has no D-Bus type", t)
		}
		b.WriteByte('(')
		for i := 0; i < t.NumField(); i++ {
			if !t.Field(i).IsExported() {
				return fmt.Errorf("dbus: struct %s has unexported field %s", t, t.Field(i).Name)
			}
			if err := sigOfType(b, t.Field(i).Type, reflect.Value{}, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(')')
	case reflect.Pointer:
		return sigOfType(b, t.Elem(), reflect.Value{}, depth)
	default:
		return fmt.Errorf("dbus: Go type %s has no D-Bus type", t)
	}
	return nil
}

// EncodeDBus encodes vals in the ABI's D-Bus value encoding (ABI §3.3) and
// returns them with their signature.
func EncodeDBus(vals ...any) (Signature, []byte, error) {
	sig, err := SignatureOf(vals...)
	if err != nil {
		return "", nil, err
	}
	var out []byte
	for _, v := range vals {
		if out, err = encodeValue(out, reflect.ValueOf(v)); err != nil {
			return "", nil, err
		}
	}
	return sig, out, nil
}

func encodeValue(b []byte, v reflect.Value) ([]byte, error) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil, errors.New("dbus: nil has no D-Bus value")
		}
		v = v.Elem()
	}
	switch v.Type() {
	case variantT:
		vr := v.Interface().(Variant)
		if vr.Sig == "" {
			vr = MakeVariant(vr.Value)
		}
		if s, err := SignatureOf(vr.Value); err != nil || s != vr.Sig {
			return nil, fmt.Errorf("dbus: variant says %q but holds a %s", vr.Sig, s)
		}
		b = appendStr(b, string(vr.Sig))
		return encodeValue(b, reflect.ValueOf(vr.Value))
	case structT:
		var err error
		for i := 0; i < v.Len(); i++ {
			if b, err = encodeValue(b, v.Index(i)); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case reflect.Uint8:
		return append(b, byte(v.Uint())), nil
	case reflect.Int16:
		return binary.LittleEndian.AppendUint16(b, uint16(v.Int())), nil
	case reflect.Uint16:
		return binary.LittleEndian.AppendUint16(b, uint16(v.Uint())), nil
	case reflect.Int32, reflect.Int:
		return binary.LittleEndian.AppendUint32(b, uint32(v.Int())), nil
	case reflect.Uint32, reflect.Uint:
		return binary.LittleEndian.AppendUint32(b, uint32(v.Uint())), nil
	case reflect.Int64:
		return binary.LittleEndian.AppendUint64(b, uint64(v.Int())), nil
	case reflect.Uint64:
		return binary.LittleEndian.AppendUint64(b, v.Uint()), nil
	case reflect.Float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float())), nil
	case reflect.String:
		return appendStr(b, v.String()), nil
	case reflect.Slice, reflect.Array:
		b = binary.LittleEndian.AppendUint32(b, uint32(v.Len()))
		var err error
		for i := 0; i < v.Len(); i++ {
			e := v.Index(i)
			if e.Type() == anyT {
				e = reflect.ValueOf(MakeVariant(e.Interface()))
			}
			if b, err = encodeValue(b, e); err != nil {
				return nil, err
			}
		}
		return b, nil
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		b = binary.LittleEndian.AppendUint32(b, uint32(len(keys)))
		var err error
		for _, k := range keys {
			if b, err = encodeValue(b, k); err != nil {
				return nil, err
			}
			e := v.MapIndex(k)
			if e.Type() == anyT {
				e = reflect.ValueOf(MakeVariant(e.Interface()))
			}
			if b, err = encodeValue(b, e); err != nil {
				return nil, err
			}
		}
		return b, nil
	case reflect.Struct:
		var err error
		for i := 0; i < v.NumField(); i++ {
			if b, err = encodeValue(b, v.Field(i)); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("dbus: Go type %s has no D-Bus type", v.Type())
}

// EncodeDBusAs encodes vals as the signature sig says, which EncodeDBus
// infers instead: what DecodeDBus gives for an array of containers ([]any)
// or an empty one encodes as its signature, not as av. Each value must
// hold what its complete type in sig takes: Struct or a Go struct for a
// struct, a slice for an array, a map for a dict.
func EncodeDBusAs(sig Signature, vals ...any) ([]byte, error) {
	var out []byte
	rest := string(sig)
	for i, v := range vals {
		n, err := typeLen(rest, 0)
		if err != nil {
			return nil, fmt.Errorf("dbus: signature %q for value %d: %w", sig, i, err)
		}
		if out, err = encodeAs(out, rest[:n], reflect.ValueOf(v), 0); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	if rest != "" {
		return nil, fmt.Errorf("dbus: signature %q has types left after %d values", sig, len(vals))
	}
	return out, nil
}

func encodeAs(b []byte, t string, v reflect.Value, depth int) ([]byte, error) {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	if depth > 64 || !v.IsValid() {
		return nil, fmt.Errorf("dbus: no value for %s, or nested too deep", t)
	}
	elems := func(n int, elem func(int) ([]byte, error)) ([]byte, error) {
		var err error
		for i := 0; i < n && err == nil; i++ {
			b, err = elem(i)
		}
		return b, err
	}
	switch {
	case t == "v":
		x, ok := v.Interface().(Variant)
		if !ok {
			x = MakeVariant(v.Interface())
		}
		b = appendStr(b, string(x.Sig))
		return encodeAs(b, string(x.Sig), reflect.ValueOf(x.Value), depth+1)
	case strings.HasPrefix(t, "a{") && v.Kind() == reflect.Map:
		kt, _ := typeLen(t[2:], depth+1)
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return lessKey(keys[i], keys[j]) })
		b = binary.LittleEndian.AppendUint32(b, uint32(len(keys)))
		return elems(len(keys), func(i int) ([]byte, error) {
			b, err := encodeAs(b, t[2:2+kt], keys[i], depth+1)
			if err != nil {
				return nil, err
			}
			return encodeAs(b, t[2+kt:len(t)-1], v.MapIndex(keys[i]), depth+1)
		})
	case t[0] == 'a' && t[1] != '{' && (v.Kind() == reflect.Slice || v.Kind() == reflect.Array):
		b = binary.LittleEndian.AppendUint32(b, uint32(v.Len()))
		return elems(v.Len(), func(i int) ([]byte, error) { return encodeAs(b, t[1:], v.Index(i), depth+1) })
	case t[0] == '(' && (v.Type() == structT || v.Kind() == reflect.Struct):
		n := v.Len
		field := v.Index
		if v.Kind() == reflect.Struct {
			n, field = v.NumField, v.Field
		}
		rest := t[1 : len(t)-1]
		b, err := elems(n(), func(i int) ([]byte, error) {
			l, err := typeLen(rest, depth+1)
			if err != nil {
				return nil, fmt.Errorf("dbus: struct %s has fewer fields than %d", t, n())
			}
			f := rest[:l]
			rest = rest[l:]
			return encodeAs(b, f, field(i), depth+1)
		})
		if err == nil && rest != "" {
			err = fmt.Errorf("dbus: struct %s has more fields than %d", t, n())
		}
		return b, err
	case len(t) == 1 && t != "v":
		if s, err := SignatureOf(v.Interface()); err != nil || string(s) != t {
			return nil, fmt.Errorf("dbus: a %s is not a %s", v.Type(), t)
		}
		return encodeValue(b, v)
	}
	return nil, fmt.Errorf("dbus: a %s cannot be encoded as %s", v.Type(), t)
}

// lessKey orders dict keys as the host writes them: numbers by value,
// strings by their bytes.
func lessKey(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		return a.Int() < b.Int()
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return a.Uint() < b.Uint()
	case reflect.Float64:
		return a.Float() < b.Float()
	}
	return a.String() < b.String()
}

func appendStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// DecodeDBus decodes a body in the ABI's D-Bus value encoding. Basic
// values decode to their Go types (string, int32, ObjectPath, ...), arrays
// of basic values to typed slices ([]string), other arrays to []any, a{sv}
// to map[string]Variant, other dicts to typed maps where the value type is
// basic or Variant and map[K]any otherwise, and structs to Struct.
func DecodeDBus(sig Signature, body []byte) ([]any, error) {
	if len(sig) > 255 {
		return nil, fmt.Errorf("dbus: signature of %d bytes, over 255", len(sig))
	}
	d := &vdec{b: body}
	var out []any
	for rest := string(sig); rest != ""; {
		n, err := typeLen(rest, 0)
		if err != nil {
			return nil, fmt.Errorf("dbus: signature %q: %w", sig, err)
		}
		v, err := d.value(rest[:n], 0)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		rest = rest[n:]
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("dbus: %d bytes left after signature %q", len(d.b), sig)
	}
	return out, nil
}

func typeLen(s string, depth int) (int, error) {
	if depth > 64 || s == "" {
		return 0, errors.New("bad signature")
	}
	switch s[0] {
	case 'a':
		if len(s) > 1 && s[1] == '{' {
			if len(s) < 3 || strings.IndexByte("ybnqiuxtdsog", s[2]) < 0 {
				return 0, errors.New("dict key must be a basic type")
			}
			k := 1
			v, err := typeLen(s[2+k:], depth+1)
			if err != nil || len(s) <= 2+k+v || s[2+k+v] != '}' {
				return 0, errors.New("bad dict entry")
			}
			return 3 + k + v, nil
		}
		n, err := typeLen(s[1:], depth+1)
		return n + 1, err
	case '(':
		i := 1
		for i < len(s) && s[i] != ')' {
			n, err := typeLen(s[i:], depth+1)
			if err != nil {
				return 0, err
			}
			i += n
		}
		if i >= len(s) || i == 1 {
			return 0, errors.New("unclosed or empty struct")
		}
		return i + 1, nil
	}
	if strings.IndexByte("ybnqiuxtdsogv", s[0]) < 0 {
		return 0, fmt.Errorf("unknown type %q", s[0])
	}
	return 1, nil
}

type vdec struct{ b []byte }

var errShort = errors.New("dbus: body too short")

func (d *vdec) take(n uint32) ([]byte, error) {
	if uint64(n) > uint64(len(d.b)) {
		return nil, errShort
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v, nil
}

func (d *vdec) u32() (uint32, error) {
	b, err := d.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// basicType is the Go type a basic (or variant) element decodes to.
func basicType(t string) reflect.Type {
	switch t {
	case "y":
		return reflect.TypeOf(byte(0))
	case "b":
		return reflect.TypeOf(false)
	case "n":
		return reflect.TypeOf(int16(0))
	case "q":
		return reflect.TypeOf(uint16(0))
	case "i":
		return reflect.TypeOf(int32(0))
	case "u":
		return reflect.TypeOf(uint32(0))
	case "x":
		return reflect.TypeOf(int64(0))
	case "t":
		return reflect.TypeOf(uint64(0))
	case "d":
		return reflect.TypeOf(float64(0))
	case "s":
		return reflect.TypeOf("")
	case "o":
		return objectPathT
	case "g":
		return signatureT
	case "v":
		return variantT
	}
	return nil
}

func (d *vdec) value(t string, depth int) (any, error) {
	if depth > 64 {
		return nil, errors.New("dbus: nested too deep")
	}
	switch t[0] {
	case 'y', 'b':
		b, err := d.take(1)
		if err != nil {
			return nil, err
		}
		if t[0] == 'b' {
			if b[0] > 1 {
				return nil, fmt.Errorf("dbus: boolean byte %d is neither 0 nor 1", b[0])
			}
			return b[0] == 1, nil
		}
		return b[0], nil
	case 'n', 'q':
		b, err := d.take(2)
		if err != nil {
			return nil, err
		}
		u := binary.LittleEndian.Uint16(b)
		if t[0] == 'n' {
			return int16(u), nil
		}
		return u, nil
	case 'i', 'u':
		u, err := d.u32()
		if err != nil {
			return nil, err
		}
		if t[0] == 'i' {
			return int32(u), nil
		}
		return u, nil
	case 'x', 't', 'd':
		b, err := d.take(8)
		if err != nil {
			return nil, err
		}
		u := binary.LittleEndian.Uint64(b)
		switch t[0] {
		case 'x':
			return int64(u), nil
		case 'd':
			return math.Float64frombits(u), nil
		}
		return u, nil
	case 's', 'o', 'g':
		n, err := d.u32()
		if err != nil {
			return nil, err
		}
		b, err := d.take(n)
		if err != nil {
			return nil, err
		}
		switch t[0] {
		case 'o':
			return ObjectPath(b), nil
		case 'g':
			return Signature(b), nil
		}
		return string(b), nil
	case 'v':
		n, err := d.u32()
		if err != nil {
			return nil, err
		}
		sb, err := d.take(n)
		if err != nil {
			return nil, err
		}
		if l, err := typeLen(string(sb), depth+1); err != nil || l != len(sb) {
			return nil, fmt.Errorf("dbus: bad variant signature %q", sb)
		}
		v, err := d.value(string(sb), depth+1)
		if err != nil {
			return nil, err
		}
		return Variant{Sig: Signature(sb), Value: v}, nil
	case 'a':
		n, err := d.u32()
		if err != nil {
			return nil, err
		}
		if uint64(n) > uint64(len(d.b)) {
			return nil, errShort
		}
		if t[1] == '{' {
			kt := t[2:3]
			vt := t[3 : len(t)-1]
			var m reflect.Value
			if et := basicType(vt); et != nil {
				m = reflect.MakeMap(reflect.MapOf(basicType(kt), et))
			} else {
				m = reflect.MakeMap(reflect.MapOf(basicType(kt), anyT))
			}
			for i := uint32(0); i < n; i++ {
				k, err := d.value(kt, depth+1)
				if err != nil {
					return nil, err
				}
				v, err := d.value(vt, depth+1)
				if err != nil {
					return nil, err
				}
				m.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(v))
			}
			return m.Interface(), nil
		}
		et := t[1:]
		if bt := basicType(et); bt != nil {
			s := reflect.MakeSlice(reflect.SliceOf(bt), 0, int(n))
			for i := uint32(0); i < n; i++ {
				v, err := d.value(et, depth+1)
				if err != nil {
					return nil, err
				}
				s = reflect.Append(s, reflect.ValueOf(v))
			}
			return s.Interface(), nil
		}
		s := make([]any, 0, n)
		for i := uint32(0); i < n; i++ {
			v, err := d.value(et, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case '(':
		var st Struct
		for rest := t[1 : len(t)-1]; rest != ""; {
			n, err := typeLen(rest, depth+1)
			if err != nil {
				return nil, err
			}
			v, err := d.value(rest[:n], depth+1)
			if err != nil {
				return nil, err
			}
			st = append(st, v)
			rest = rest[n:]
		}
		return st, nil
	}
	return nil, fmt.Errorf("dbus: unknown type %q", t)
}
