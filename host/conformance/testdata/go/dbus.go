package main

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	airlock "github.com/airlockhq/airlock/sdk/go"
)

// dbusText prints decoded D-Bus values in the text form that every SDK's
// formatter writes: numbers in decimal (doubles shortest), booleans
// true/false, strings "quoted", object paths o"/p", signatures g"sv",
// arrays [a, b], dicts {k: v} in key order, structs (a, b), variants
// <sig value>; a body's values are separated by ", ".
func dbusText(vals []any) string {
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
	switch x := v.Interface().(type) {
	case airlock.ObjectPath:
		b.WriteString(`o"` + string(x) + `"`)
		return
	case airlock.Signature:
		b.WriteString(`g"` + string(x) + `"`)
		return
	case airlock.Variant:
		b.WriteString("<" + string(x.Sig) + " ")
		writeValue(b, reflect.ValueOf(x.Value))
		b.WriteString(">")
		return
	case airlock.Struct:
		b.WriteString("(")
		for i, f := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, reflect.ValueOf(f))
		}
		b.WriteString(")")
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
		b.WriteString("[")
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, v.Index(i))
		}
		b.WriteString("]")
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool {
			a, c := keys[i], keys[j]
			switch a.Kind() {
			case reflect.Int16, reflect.Int32, reflect.Int64:
				return a.Int() < c.Int()
			case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				return a.Uint() < c.Uint()
			}
			return fmt.Sprint(a.Interface()) < fmt.Sprint(c.Interface())
		})
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, k)
			b.WriteString(": ")
			writeValue(b, v.MapIndex(k))
		}
		b.WriteString("}")
	default:
		fmt.Fprintf(b, "?%T", v.Interface())
	}
}

// dbusStep calls the simulated device's system bus. The manifest grants
// systemd's StopUnit for bluetooth.service and GetUnit, reading unit
// properties, and reading and writing hostname1's PrettyHostname.
func dbusStep(step string) {
	log := func(s string) { airlock.Info("dbus " + step + ": " + s) }
	reply := func(r *airlock.Reply, err error) {
		if err != nil {
			log(result(err) + " (error name " + airlock.DBusErrorName(err) + ")")
			return
		}
		log("ok sig=" + string(r.Signature) + " body=" + dbusText(r.Body))
	}
	systemd := airlock.DBus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	unit := airlock.DBus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/bluetooth_2eservice")
	hostname := airlock.DBus.Object("org.freedesktop.hostname1", "/org/freedesktop/hostname1")
	switch step {
	case "getunit":
		reply(systemd.Call("org.freedesktop.systemd1.Manager.GetUnit", "bluetooth.service"))
	case "getunit-missing":
		reply(systemd.Call("org.freedesktop.systemd1.Manager.GetUnit", "nosuch.service"))
	case "stop":
		reply(systemd.Call("org.freedesktop.systemd1.Manager.StopUnit", "bluetooth.service", "replace"))
	case "stop-badmode":
		reply(systemd.Call("org.freedesktop.systemd1.Manager.StopUnit", "bluetooth.service", "sideways"))
	case "stop-ssh":
		reply(systemd.Call("org.freedesktop.systemd1.Manager.StopUnit", "ssh.service", "replace"))
	case "reboot":
		reply(systemd.Call("org.freedesktop.systemd1.Manager.Reboot"))
	case "get":
		v, err := unit.GetProperty("org.freedesktop.systemd1.Unit.ActiveState")
		if err != nil {
			log(result(err))
			return
		}
		log("ok " + dbusText([]any{v}))
	case "getall":
		m, err := unit.GetAllProperties("org.freedesktop.systemd1.Unit")
		if err != nil {
			log(result(err))
			return
		}
		log("ok " + dbusText([]any{m}))
	case "get-denied":
		_, err := hostname.GetProperty("org.freedesktop.hostname1.Hostname")
		log(result(err))
	case "set":
		log(result(hostname.SetProperty("org.freedesktop.hostname1.PrettyHostname", "Plant 7")))
	case "set-struct":
		v := airlock.Struct{int32(-7), []string{"a", "b"}, map[string]airlock.Variant{"k": airlock.MakeVariant(uint64(9))}}
		log(result(hostname.SetProperty("org.freedesktop.hostname1.PrettyHostname", v)))
	case "set-denied":
		log(result(hostname.SetProperty("org.freedesktop.hostname1.Hostname", "x")))
	default:
		airlock.Warn("unknown dbus step " + step)
	}
}
