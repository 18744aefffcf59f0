package dbus

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"

	godbus "github.com/godbus/dbus/v5"
)

// synthBody encodes a synthetic signal's arguments: body is a JSON array
// with one value per complete type of sig. Numbers fill integer and double
// types; an object fills a dict; an array fills an array or a struct; a
// variant takes a string, a boolean, a number (an int64 if whole, else a
// double), an array of strings or an object of variants.
func synthBody(sig, body string, limit int) ([]byte, error) {
	types, err := checkSignature(sig)
	if err != nil {
		return nil, err
	}
	var vals []any
	if body != "" {
		if err := json.Unmarshal([]byte(body), &vals); err != nil {
			return nil, fmt.Errorf("body: write a JSON array of the arguments: %v", err)
		}
	}
	if len(vals) != len(types) {
		return nil, fmt.Errorf("body has %d arguments; signature %q has %d", len(vals), sig, len(types))
	}
	vs := make([]any, len(types))
	for i, t := range types {
		v, err := fromJSON(t, vals[i])
		if err != nil {
			return nil, fmt.Errorf("argument %d (%s): %v", i, t, err)
		}
		vs[i] = v.Interface()
	}
	return encodeBody(sig, vs, limit)
}

// fromJSON is x, a decoded JSON value, as the Go value of the complete
// D-Bus type t (goType).
func fromJSON(t string, x any) (reflect.Value, error) {
	gt := goType(t)
	bad := func() (reflect.Value, error) {
		return reflect.Value{}, fmt.Errorf("%v (JSON %T) is not a D-Bus %s", x, x, t)
	}
	switch t[0] {
	case 'y', 'n', 'q', 'i', 'u', 'x', 't':
		f, ok := x.(float64)
		if !ok || f != math.Trunc(f) {
			return bad()
		}
		v := reflect.New(gt).Elem()
		if gt.Kind() >= reflect.Uint && gt.Kind() <= reflect.Uint64 {
			if f < 0 || v.OverflowUint(uint64(f)) {
				return bad()
			}
			v.SetUint(uint64(f))
		} else {
			if v.OverflowInt(int64(f)) {
				return bad()
			}
			v.SetInt(int64(f))
		}
		return v, nil
	case 'd':
		if f, ok := x.(float64); ok {
			return reflect.ValueOf(f), nil
		}
	case 'b':
		if b, ok := x.(bool); ok {
			return reflect.ValueOf(b), nil
		}
	case 's', 'o':
		if s, ok := x.(string); ok {
			return reflect.ValueOf(s).Convert(gt), nil
		}
	case 'g':
		if s, ok := x.(string); ok {
			sg, err := godbus.ParseSignature(s)
			if err != nil {
				return reflect.Value{}, err
			}
			return reflect.ValueOf(sg), nil
		}
	case 'v':
		v, err := variantOf(x)
		if err != nil {
			return reflect.Value{}, err
		}
		return reflect.ValueOf(godbus.MakeVariant(v)), nil
	case 'a':
		if t[1] == '{' {
			obj, ok := x.(map[string]any)
			if !ok {
				return bad()
			}
			m := reflect.MakeMapWithSize(gt, len(obj))
			for k, e := range obj {
				var kx any = k
				if t[2] != 's' && t[2] != 'o' && t[2] != 'g' {
					f, err := strconv.ParseFloat(k, 64)
					if err != nil {
						return reflect.Value{}, fmt.Errorf("key %q is not a D-Bus %c", k, t[2])
					}
					kx = f
				}
				kv, err := fromJSON(t[2:3], kx)
				if err != nil {
					return reflect.Value{}, err
				}
				ev, err := fromJSON(t[3:len(t)-1], e)
				if err != nil {
					return reflect.Value{}, err
				}
				m.SetMapIndex(kv, ev)
			}
			return m, nil
		}
		arr, ok := x.([]any)
		if !ok {
			return bad()
		}
		s := reflect.MakeSlice(gt, 0, len(arr))
		for _, e := range arr {
			ev, err := fromJSON(t[1:], e)
			if err != nil {
				return reflect.Value{}, err
			}
			s = reflect.Append(s, ev)
		}
		return s, nil
	case '(':
		arr, ok := x.([]any)
		if !ok || len(arr) != gt.NumField() {
			return bad()
		}
		v := reflect.New(gt).Elem()
		for i, rest := 0, t[1:len(t)-1]; rest != ""; i++ {
			n, _ := completeLen(rest, 0)
			fv, err := fromJSON(rest[:n], arr[i])
			if err != nil {
				return reflect.Value{}, err
			}
			v.Field(i).Set(fv)
			rest = rest[n:]
		}
		return v, nil
	}
	return bad()
}

// variantOf is the Go value a variant holds for x.
func variantOf(x any) (any, error) {
	switch x := x.(type) {
	case string, bool:
		return x, nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			return int64(x), nil
		}
		return x, nil
	case []any:
		ss := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("a variant's array must hold strings (as), not %v", e)
			}
			ss[i] = s
		}
		return ss, nil
	case map[string]any:
		m := make(map[string]godbus.Variant, len(x))
		for k, e := range x {
			v, err := variantOf(e)
			if err != nil {
				return nil, err
			}
			m[k] = godbus.MakeVariant(v)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%v (JSON %T) cannot be a variant", x, x)
}
