// Command guest is the dbus capability's test plugin. Each timer event's
// name is a request, "op|destination|path|...", with an optional "#n" tail
// so that equal requests do not coalesce; the outcome is logged.
package main

import (
	"encoding/hex"
	"fmt"
	"strings"
	"unsafe"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
)

//go:wasmimport airlock_dbus_v1 call
func rawCall(req unsafe.Pointer, n uint32, out *byte, cap uint32, outLen *uint32) uint32

func init() {
	airlock.OnStart(func() error { airlock.Info("started"); return nil })
	airlock.OnTimer(func(t airlock.Timer) error {
		name, _, _ := strings.Cut(t.Name, "#")
		f := strings.Split(name, "|")
		if len(f) < 3 {
			return nil
		}
		obj := airlock.DBus.Object(f[1], airlock.ObjectPath(f[2]))
		switch f[0] {
		case "call":
			args := make([]any, 0, len(f)-4)
			for _, a := range f[4:] {
				args = append(args, a)
			}
			r, err := obj.Call(f[3], args...)
			report(t.Name, r, err)
		case "get":
			v, err := obj.GetProperty(f[3])
			if err != nil {
				report(t.Name, nil, err)
			} else {
				airlock.Info(fmt.Sprintf("dbus %s ok %s %v", t.Name, v.Sig, v.Value))
			}
		case "getall":
			m, err := obj.GetAllProperties(f[3])
			if err != nil {
				report(t.Name, nil, err)
			} else {
				airlock.Info(fmt.Sprintf("dbus %s ok %v", t.Name, m))
			}
		case "set":
			err := obj.SetProperty(f[3], f[4])
			report(t.Name, &airlock.Reply{}, err)
		case "raw", "rawhex", "bigay":
			// raw|dest|path|iface|member|signature|hex body; rawhex
			// logs the reply record in hex; bigay|dest|path|iface|member|n
			// sends a(y) with n elements.
			var body []byte
			if f[0] == "bigay" {
				var n uint32
				fmt.Sscan(f[5], &n)
				body = append([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}, make([]byte, n)...)
				f = append(f[:5], "a(y)")
			} else {
				body, _ = hex.DecodeString(f[6])
			}
			req := abi.AppendRecord(nil, abi.Record{
				{Key: "destination", Value: []byte(f[1])}, {Key: "path", Value: []byte(f[2])},
				{Key: "interface", Value: []byte(f[3])}, {Key: "member", Value: []byte(f[4])},
				{Key: "signature", Value: []byte(f[5])}, {Key: "body", Value: body}})
			data, err := airlock.Call(func(out *byte, cap uint32, n *uint32) uint32 {
				return rawCall(unsafe.Pointer(&req[0]), uint32(len(req)), out, cap, n)
			})
			switch {
			case err != nil:
				report(t.Name, nil, err)
			case f[0] == "rawhex":
				airlock.Info(fmt.Sprintf("dbus %s ok %x", t.Name, data))
			default:
				airlock.Info(fmt.Sprintf("dbus %s ok %d bytes", t.Name, len(data)))
			}
		case "hammer":
			// hammer|dest|path|iface|member|n|timeout_ms: n calls with no
			// arguments, each bounded by timeout_ms; logs the count of
			// each outcome and the last message.
			var n int
			fmt.Sscan(f[5], &n)
			req := abi.AppendRecord(nil, abi.Record{
				{Key: "destination", Value: []byte(f[1])}, {Key: "path", Value: []byte(f[2])},
				{Key: "interface", Value: []byte(f[3])}, {Key: "member", Value: []byte(f[4])},
				{Key: "timeout_ms", Value: []byte(f[6])}})
			counts := map[string]int{}
			last := ""
			for i := 0; i < n; i++ {
				_, err := airlock.Call(func(out *byte, cap uint32, n *uint32) uint32 {
					return rawCall(unsafe.Pointer(&req[0]), uint32(len(req)), out, cap, n)
				})
				kind := "ok"
				if err != nil {
					kind, _, _ = strings.Cut(err.Error(), ":")
					last = err.Error()
				}
				counts[kind]++
			}
			airlock.Info(fmt.Sprintf("dbus %s ok %v last=%s", t.Name, counts, last))
		case "rawerr":
			// rawerr|x|x|hex: a whole request record; logs an error's
			// result as a record's text, or as text if it is none.
			req, _ := hex.DecodeString(f[3])
			_, err := airlock.Call(func(out *byte, cap uint32, n *uint32) uint32 {
				return rawCall(unsafe.Pointer(&req[0]), uint32(len(req)), out, cap, n)
			})
			if he, ok := err.(*airlock.HostError); ok {
				if rec, derr := abi.DecodeRecord([]byte(he.Msg)); derr == nil && len(rec) > 0 {
					airlock.Info(fmt.Sprintf("dbus %s failed: %v record %s", t.Name, he.Code, abi.RecordText(rec)))
				} else {
					airlock.Info(fmt.Sprintf("dbus %s failed: %v text %s", t.Name, he.Code, he.Msg))
				}
			} else {
				report(t.Name, nil, err)
			}
		case "rawrec":
			// rawrec|x|x|hex: a whole request record, hostile or not
			req, _ := hex.DecodeString(f[3])
			req = append(req, 0)
			_, err := airlock.Call(func(out *byte, cap uint32, n *uint32) uint32 {
				return rawCall(unsafe.Pointer(&req[0]), uint32(len(req)-1), out, cap, n)
			})
			report(t.Name, nil, err)
		}
		return nil
	})
	airlock.OnDBusSignal(func(s airlock.Signal) error {
		msg := fmt.Sprintf("signal %s.%s from %s path=%s rule=%s", s.Interface, s.Member, s.SenderName, s.Path, s.Rule)
		if iface, changed, _, ok := s.PropertiesChanged(); ok {
			msg += fmt.Sprintf(" changed %s %v", iface, changed)
		} else {
			msg += fmt.Sprintf(" body %v", s.Body)
		}
		airlock.Info(msg)
		return nil
	})
}

func report(name string, r *airlock.Reply, err error) {
	if err != nil {
		airlock.Info(fmt.Sprintf("dbus %s failed: %v", name, err))
		return
	}
	airlock.Info(fmt.Sprintf("dbus %s ok sig=%s body=%v", name, r.Signature, r.Body))
}

func main() {}
