package dbus

import (
	"fmt"
	"strings"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
)

var _ capability.Synthesizer = (*DBus)(nil)

func (*DBus) SynthKind() string { return "dbus" }

func (*DBus) SynthHelp() capability.SynthHelp {
	return capability.SynthHelp{Positional: []string{"path", "interface", "member"}, More: true,
		Usage: "<path> <interface> <member> [signature=SIG body=JSON]", Takes: "an object path, an interface and a member",
		What: "a D-Bus signal; body is a JSON array of its arguments, such as:\n" +
			`dbus /org/freedesktop/timedate1 org.freedesktop.DBus.Properties PropertiesChanged signature=sa{sv}as body='["org.freedesktop.timedate1",{"NTPSynchronized":true},[]]'`}
}

// Synthesize makes a signal from path, interface and member, with no
// sender, and with the arguments body (JSON, see synthBody) of signature.
func (d *DBus) Synthesize(m *manifest.Manifest, args []string) (capability.Synthetic, error) {
	if err := capability.NoTrigger(m, "dbus", "a D-Bus signal"); err != nil {
		return capability.Synthetic{}, err
	}
	f, err := capability.SynthFields("dbus", args)
	if err != nil {
		return capability.Synthetic{}, err
	}
	for k := range f {
		if k != "path" && k != "interface" && k != "member" && k != "signature" && k != "body" {
			return capability.Synthetic{}, fmt.Errorf("dbus property %s: a signal has a path, an interface, a member, a signature and a body", k)
		}
	}
	path, iface, member := f["path"], f["interface"], f["member"]
	if !strings.HasPrefix(path, "/") || iface == "" || member == "" {
		return capability.Synthetic{}, fmt.Errorf("dbus needs an object path starting with /, an interface and a member")
	}
	sig := f["signature"]
	var body []byte
	if sig != "" || f["body"] != "" {
		if body, err = synthBody(sig, f["body"], d.cfg.MaxReply); err != nil {
			return capability.Synthetic{}, fmt.Errorf("dbus signal arguments: %w", err)
		}
	}
	rec := abi.Record{
		{Key: "sender", Value: nil},
		{Key: "path", Value: []byte(path)},
		{Key: "interface", Value: []byte(iface)},
		{Key: "member", Value: []byte(member)},
		{Key: "signature", Value: []byte(sig)},
		{Key: "body", Value: body},
		{Key: "sender_name", Value: nil},
		{Key: capability.SynthKey, Value: []byte(capability.SynthValue)},
	}
	return capability.Synthetic{
		Event: capability.Event{Kind: uint32(abi.EventDBusSignal), Payload: abi.AppendRecord(nil, rec)},
		Desc:  fmt.Sprintf("dbus %s %s.%s", path, iface, member),
	}, nil
}
