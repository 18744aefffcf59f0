package conformance

import (
	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/cloud"
	"github.com/airlockhq/airlock/internal/dbus"
	"github.com/airlockhq/airlock/internal/mount"
	"github.com/airlockhq/airlock/internal/supervisor"
	airlock "github.com/airlockhq/airlock/sdk/go"
)

// device is the simulated device behind the capability steps: the
// capabilities as host/builtin wires them, minus the demo, so that
// the test can steer their simulators.
type device struct {
	caps []capability.Capability
	sup  *supervisor.Capability
}

func newDevice() *device {
	noEnv := func(string) string { return "" }
	d := &device{sup: supervisor.NewCapability(supervisor.CapabilityOptions{Getenv: noEnv})}
	// The simulated cloud: this device (cloud.SimUUID, with its API key),
	// a neighbour in the same fleet, tags, variables and the fleet.
	so := cloud.DefaultSim()
	d.caps = []capability.Capability{d.sup, mount.New(mount.Options{}), dbus.New(), cloud.New(cloud.Options{Getenv: noEnv, Sim: &so})}
	return d
}

// capStep is one capability step: a timer named name (or event, when set),
// with the device steered before and after, and log lines it causes
// besides its own (events it triggers) waited for before the next step.
type capStep struct {
	name          string
	event         *capability.Event
	before, after func()
	wait          []string
	marker        string // the step's own barrier marker, instead of the next syncN
}

// steps lists the capability steps; README.md describes them.
func (d *device) steps() []capStep {
	return []capStep{
		// supervisor: the manifest grants blink, reboot, device.read and
		// service.restart:main.
		{name: "sup:version"},
		{name: "sup:device"},
		{name: "sup:state"},
		{name: "sup:blink"},
		{name: "sup:restart-main"},
		{name: "sup:restart-other"}, // denied: another service
		{name: "sup:shutdown"},      // denied: not granted
		{name: "sup:raw"},           // invalid: an unknown request field
		{name: "sup:reboot", // locked: the app holds the update lock
			before: func() { d.sup.Sim().Lock("main") }, after: func() { d.sup.Sim().Unlock() }},

		// mount: the simulated USB stick (label MEDIA, UUID 1234-ABCD,
		// /dev/sdb1, vfat). The manifest grants vfat from label:MEDIA* and
		// device:/dev/sd*, with the extra option sync.
		{name: "mount:denied-option"}, // uid=5 is not granted
		{name: "mount:denied-source"}, // the device's own boot partition
		{name: "mount:label"},
		{name: "mount:read"}, // a file on the stick, through /media
		{name: "mount:uuid"}, // the same stick again: busy
		{name: "mount:list"},
		{name: "mount:unmount"},
		{name: "mount:unmount"}, // not_found
		{name: "mount:device"},  // by node, read-only, under another name
		{name: "mount event", event: &capability.Event{Kind: uint32(abi.EventMount), Payload: abi.AppendRecord(nil, abi.Record{
			{Key: "action", Value: []byte("unmounted")}, {Key: "target", Value: []byte("stick")},
			{Key: "source", Value: []byte("device:/dev/sdb1")}, {Key: "device", Value: []byte("/dev/sdb1")},
			{Key: "reason", Value: []byte("device removed")}, {Key: "x_new_field", Value: []byte("ignored")},
		})}},
		{name: "mount:list"},

		// dbus: the simulated bus's systemd1 and hostname1. The manifest
		// grants StopUnit on bluetooth.service, GetUnit, reading unit
		// properties and PrettyHostname, and writing PrettyHostname; its
		// [[trigger.dbus]] follows bluetooth.service's PropertiesChanged.
		{name: "dbus:getunit"},
		{name: "dbus:getunit-missing"},                  // the peer's NoSuchUnit: not_found
		{name: "dbus:stop", wait: []string{"SubState"}}, // two PropertiesChanged signals follow
		{name: "dbus:stop-badmode"},                     // the peer's InvalidArgs: invalid
		{name: "dbus:stop-ssh"},                         // denied by args
		{name: "dbus:reboot"},                           // denied: no rule names it
		{name: "dbus:get"},
		{name: "dbus:getall"},
		{name: "dbus:get-denied"},
		{name: "dbus:set"},
		{name: "dbus:set-struct"}, // a struct with an array, a dict and a variant, encoded
		{name: "dbus:set-denied"},
		{name: "dbus signal", event: signalEvent()}, // every type, decoded

		// supervisor, the operations of issue 20 (a marker of their own
		// keeps the older lines' sync numbers): device-info and apps are
		// granted, logs.read only for main, tags.set not at all (the bad
		// key is refused before the gate).
		{name: "sup:device-info", marker: "ops1"},
		{name: "sup:apps", marker: "ops2"},
		{name: "sup:logs-other", marker: "ops3"},  // denied: another service
		{name: "sup:tag-hostile", marker: "ops4"}, // invalid: a space in the key

		// cloud: the simulated cloud API (DefaultSim: device airlock-sim,
		// tags location=lab and owner=ops). The manifest grants every
		// operation, but tags.set only for location and tags.delete only
		// for owner. Markers of their own, as above.
		{name: "cloud:device", marker: "cloud1"},
		{name: "cloud:tags", marker: "cloud2"},
		{name: "cloud:tag-set", marker: "cloud3"},    // location=roof
		{name: "cloud:tag-delete", marker: "cloud4"}, // owner: deleted=true
		{name: "cloud:tags", marker: "cloud5"},       // location=roof
		{name: "cloud:name", marker: "cloud6"},
		{name: "cloud:device", marker: "cloud7"}, // the new name
		{name: "cloud:env", marker: "cloud8"},    // device and fleet scope
		{name: "cloud:config", marker: "cloud9"}, // device and fleet scope
		{name: "cloud:fleet", marker: "cloud10"},
		{name: "cloud:tag-denied", marker: "cloud11"},   // denied: tags.set:owner
		{name: "cloud:name-invalid", marker: "cloud12"}, // invalid: an empty name
	}
}

// signalEvent is a dbus_signal event whose body holds every basic type and
// every container, nested, for the SDKs' decoders.
func signalEvent() *capability.Event {
	sig, body, err := airlock.EncodeDBus(
		airlock.Struct{byte(7), true, int16(-2), uint16(3), int32(-4), uint32(5), int64(-6), uint64(7), 1.5,
			"str", airlock.ObjectPath("/a/b"), airlock.Signature("a{sv}")},
		[]airlock.Struct{{"x", airlock.MakeVariant(int32(1))}, {"y", airlock.MakeVariant([]string{"p", "q"})}},
		[][]int32{{1, 2}, {}, {3}},
		map[uint32]string{1: "one", 2: "two"},
		[]byte("hi"),
		airlock.MakeVariant(map[string]airlock.Variant{"k": airlock.MakeVariant(true)}),
	)
	if err != nil {
		panic(err)
	}
	rec := abi.Record{
		{Key: "sender", Value: []byte(":1.42")}, {Key: "sender_name", Value: []byte("org.example.Sim")},
		{Key: "path", Value: []byte("/org/example")}, {Key: "interface", Value: []byte("org.example.Iface")},
		{Key: "member", Value: []byte("Everything")}, {Key: "signature", Value: []byte(sig)},
		{Key: "body", Value: body}, {Key: "rule", Value: []byte("synthetic")},
	}
	return &capability.Event{Kind: uint32(abi.EventDBusSignal), Payload: abi.AppendRecord(nil, rec)}
}
