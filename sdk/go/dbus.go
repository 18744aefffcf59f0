package airlock

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/airlockhq/airlock/sdk/go/abi"
)

// DBus is the system bus, as the plugin's [[dbus.call]] and
// [[dbus.property]] rules allow it. It reads like godbus:
//
//	obj := airlock.DBus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
//	reply, err := obj.Call("org.freedesktop.systemd1.Manager.StopUnit", "bluetooth.service", "replace")
//
// A call the manifest does not allow returns a *HostError with abi.Denied
// and a message naming what is missing; the bus being down gives
// abi.Unavailable; a call past the handler deadline gives abi.Timeout. An
// error from the peer gives abi.NotFound, abi.Invalid or abi.Failed, with a
// message that starts with the D-Bus error name, which DBusErrorName
// returns.
var DBus Bus

// Bus is the type of DBus.
type Bus struct{}

// Object names a remote object: a destination bus name and an object path.
func (Bus) Object(dest string, path ObjectPath) *Object {
	return &Object{Destination: dest, Path: path}
}

// Object is a remote object on the system bus.
type Object struct {
	Destination string
	Path        ObjectPath
	// Timeout, if set, bounds each call below the host's own bound
	// (runtime.toml dbus.call_timeout) and the handler's deadline.
	Timeout time.Duration
}

// Reply is a method call's result.
type Reply struct {
	Signature Signature
	Body      []any
}

// Store copies the reply's values into pointers, as godbus's Call.Store
// does: each value must be assignable, or convertible within its kind, to
// what the pointer points at.
func (r *Reply) Store(dst ...any) error { return storeValues(r.Body, dst) }

func storeValues(body []any, dst []any) error {
	if len(dst) > len(body) {
		return fmt.Errorf("dbus: reply has %d values, Store was given %d pointers", len(body), len(dst))
	}
	for i, p := range dst {
		pv := reflect.ValueOf(p)
		if pv.Kind() != reflect.Pointer || pv.IsNil() {
			return fmt.Errorf("dbus: Store argument %d is not a pointer", i)
		}
		v := reflect.ValueOf(body[i])
		t := pv.Elem().Type()
		switch {
		case v.Type().AssignableTo(t):
			pv.Elem().Set(v)
		case v.Kind() == t.Kind() && v.Type().ConvertibleTo(t):
			pv.Elem().Set(v.Convert(t))
		default:
			return fmt.Errorf("dbus: cannot store reply value %d (%T) in %s", i, body[i], t)
		}
	}
	return nil
}

// splitMethod splits "org.foo.Iface.Member".
func splitMethod(m string) (string, string, error) {
	i := strings.LastIndexByte(m, '.')
	if i <= 0 || i == len(m)-1 {
		return "", "", &HostError{Code: abi.Invalid, Msg: fmt.Sprintf("%q is not interface.member", m)}
	}
	return m[:i], m[i+1:], nil
}

func (o *Object) base(iface string) abi.Record {
	r := abi.Record{
		{Key: "destination", Value: []byte(o.Destination)},
		{Key: "path", Value: []byte(o.Path)},
		{Key: "interface", Value: []byte(iface)},
	}
	if o.Timeout > 0 {
		r = append(r, abi.Field{Key: "timeout_ms", Value: strconv.AppendInt(nil, max(o.Timeout.Milliseconds(), 1), 10)})
	}
	return r
}

// Call calls method ("interface.Member") with args, whose D-Bus types are
// inferred as SignatureOf says. Use Variant, ObjectPath, Signature and
// Struct for the types Go has no word for.
func (o *Object) Call(method string, args ...any) (*Reply, error) {
	iface, member, err := splitMethod(method)
	if err != nil {
		return nil, err
	}
	sig, body, err := EncodeDBus(args...)
	if err != nil {
		return nil, &HostError{Code: abi.Invalid, Msg: err.Error()}
	}
	req := append(o.base(iface), abi.Field{Key: "member", Value: []byte(member)},
		abi.Field{Key: "signature", Value: []byte(sig)}, abi.Field{Key: "body", Value: body})
	return dbusRequest(dbusCall, req)
}

// GetProperty reads property ("interface.Name").
func (o *Object) GetProperty(property string) (Variant, error) {
	iface, name, err := splitMethod(property)
	if err != nil {
		return Variant{}, err
	}
	r, err := dbusRequest(dbusGetProperty, append(o.base(iface), abi.Field{Key: "name", Value: []byte(name)}))
	if err != nil {
		return Variant{}, err
	}
	var v Variant
	return v, r.Store(&v)
}

// GetAllProperties reads the properties of iface that the manifest lets
// the plugin read (the host leaves out the others).
func (o *Object) GetAllProperties(iface string) (map[string]Variant, error) {
	r, err := dbusRequest(dbusGetAllProperties, o.base(iface))
	if err != nil {
		return nil, err
	}
	var m map[string]Variant
	return m, r.Store(&m)
}

// SetProperty writes property ("interface.Name"). Pass a Variant to give
// the value's signature explicitly.
func (o *Object) SetProperty(property string, value any) error {
	iface, name, err := splitMethod(property)
	if err != nil {
		return err
	}
	if v, ok := value.(Variant); ok {
		value = v.Value
	}
	sig, body, err := EncodeDBus(value)
	if err != nil {
		return &HostError{Code: abi.Invalid, Msg: err.Error()}
	}
	_, err = dbusRequest(dbusSetProperty, append(o.base(iface), abi.Field{Key: "name", Value: []byte(name)},
		abi.Field{Key: "signature", Value: []byte(sig)}, abi.Field{Key: "body", Value: body}))
	return err
}

func dbusRequest(fn func(req []byte, out *byte, cap uint32, n *uint32) uint32, req abi.Record) (*Reply, error) {
	b := abi.AppendRecord(nil, append(req, abi.Field{Key: abi.ErrorsField, Value: []byte(abi.ErrorsRecord)}))
	data, err := call(func(out *byte, cap uint32, n *uint32) uint32 { return fn(b, out, cap, n) })
	if he, ok := err.(*HostError); ok {
		he.Msg, he.ErrorName = abi.DecodeErrorRecord([]byte(he.Msg))
	}
	if err != nil {
		return nil, err
	}
	rec, derr := abi.DecodeRecord(data)
	if derr != nil {
		return nil, &HostError{Code: abi.Failed, Msg: "dbus: bad reply record: " + derr.Error()}
	}
	sig, _ := rec.Get("signature")
	body, _ := rec.Get("body")
	vals, derr := DecodeDBus(Signature(sig), []byte(body))
	if derr != nil {
		return nil, &HostError{Code: abi.Failed, Msg: derr.Error()}
	}
	return &Reply{Signature: Signature(sig), Body: vals}, nil
}

// DBusErrorName returns the D-Bus error name that a failed call carries
// ("org.freedesktop.systemd1.NoSuchUnit"), or "" if the error did not come
// from the peer: the HostError's ErrorName.
func DBusErrorName(err error) string {
	var he *HostError
	if errors.As(err, &he) {
		return he.ErrorName
	}
	return ""
}

// Signal is a D-Bus signal that a [[trigger.dbus]] rule matched.
type Signal struct {
	Sender     string // the sender's unique name, ":1.42"
	SenderName string // the rule's sender, "org.freedesktop.timedate1"
	Path       ObjectPath
	Interface  string
	Member     string
	Rule       string // the rule's name, if it has one
	Signature  Signature
	Body       []any
}

// Store copies the signal's values into pointers, as Reply.Store does.
func (s Signal) Store(dst ...any) error { return storeValues(s.Body, dst) }

// PropertiesChanged decodes an org.freedesktop.DBus.Properties
// PropertiesChanged signal: the interface, the changed values, and the
// names of properties that changed without their value.
func (s Signal) PropertiesChanged() (iface string, changed map[string]Variant, invalidated []string, ok bool) {
	if s.Interface != "org.freedesktop.DBus.Properties" || s.Member != "PropertiesChanged" || s.Signature != "sa{sv}as" {
		return "", nil, nil, false
	}
	if s.Store(&iface, &changed, &invalidated) != nil {
		return "", nil, nil, false
	}
	return iface, changed, invalidated, true
}

// OnDBusSignal runs h for each signal that the plugin's [[trigger.dbus]]
// rules match.
func OnDBusSignal(h func(Signal) error) {
	Handle(abi.EventDBusSignal, func(e Event) error {
		s := Signal{Sender: e.Get("sender"), SenderName: e.Get("sender_name"), Path: ObjectPath(e.Get("path")),
			Interface: e.Get("interface"), Member: e.Get("member"), Rule: e.Get("rule"), Signature: Signature(e.Get("signature"))}
		body, _ := e.Fields.Get("body")
		vals, err := DecodeDBus(s.Signature, []byte(body))
		if err != nil {
			return err
		}
		s.Body = vals
		return h(s)
	})
}
