package airlock

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// FormatDBus writes decoded D-Bus values in the text form that every SDK's
// formatter writes (Rust's Display, C's airlock_dbus_format,
// AssemblyScript's toString): numbers in decimal (doubles shortest),
// booleans true/false, strings "quoted", object paths o"/p", signatures
// g"sv", arrays [a, b], dicts {k: v} in key order, structs (a, b), variants
// <sig value>; values are separated by ", ".
func FormatDBus(vals ...any) string {
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		writeValue(&b, reflect.ValueOf(v))
	}
	return b.String()
}

func writeValue(b *strings.Builder, v reflect.Value) {
	if v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	list := func(open, close string, n int, item func(int)) {
		b.WriteString(open)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			item(i)
		}
		b.WriteString(close)
	}
	switch x := v.Interface().(type) {
	case ObjectPath:
		b.WriteString(`o"` + string(x) + `"`)
		return
	case Signature:
		b.WriteString(`g"` + string(x) + `"`)
		return
	case Variant:
		b.WriteString("<" + string(x.Sig) + " ")
		writeValue(b, reflect.ValueOf(x.Value))
		b.WriteString(">")
		return
	case Struct:
		list("(", ")", len(x), func(i int) { writeValue(b, reflect.ValueOf(x[i])) })
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float64:
		b.WriteString(strconv.FormatFloat(v.Float(), 'g', -1, 64))
	case reflect.String:
		b.WriteString(`"` + v.String() + `"`)
	case reflect.Slice:
		list("[", "]", v.Len(), func(i int) { writeValue(b, v.Index(i)) })
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return lessKey(keys[i], keys[j]) })
		list("{", "}", len(keys), func(i int) {
			writeValue(b, keys[i])
			b.WriteString(": ")
			writeValue(b, v.MapIndex(keys[i]))
		})
	default:
		fmt.Fprintf(b, "?%T", v.Interface())
	}
}
