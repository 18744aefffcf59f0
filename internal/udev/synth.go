package udev

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
)

var _ capability.Synthesizer = (*Udev)(nil)

func (*Udev) SynthKind() string { return "udev" }

func (*Udev) SynthHelp() capability.SynthHelp {
	return capability.SynthHelp{Positional: []string{keyAction, keyDevPath}, More: true,
		Usage: "<ACTION> <DEVPATH> [KEY=VALUE...]", Takes: "an ACTION, a DEVPATH and KEY=VALUE properties",
		What: "a device event, such as:\nudev add /devices/virtual/block/sda1 SUBSYSTEM=block DEVTYPE=partition ID_FS_LABEL=MEDIA"}
}

// Synthesize makes a device event from ACTION, DEVPATH and udev properties
// (NewEvent). Its Event goes straight to the plugin, marked; its Inject goes
// through every plugin's rules, unmarked, as the kernel's would.
func (u *Udev) Synthesize(m *manifest.Manifest, args []string) (capability.Synthetic, error) {
	if err := capability.NoTrigger(m, "udev", "a device event"); err != nil {
		return capability.Synthetic{}, err
	}
	props := map[string]string{}
	var action, devpath string
	var seen [2]bool
	for _, kv := range args {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok || k == "" || strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0):
			return capability.Synthetic{}, fmt.Errorf("udev property %q: write KEY=VALUE", k)
		case k == keyAction && !seen[0]:
			action, seen[0] = v, true
		case k == keyDevPath && !seen[1]:
			devpath, seen[1] = v, true
		case k == keyAction || k == keyDevPath:
			return capability.Synthetic{}, fmt.Errorf("udev property %s: give it as the ACTION or DEVPATH argument", k)
		default:
			props[k] = v
		}
	}
	if action == "" || !strings.HasPrefix(devpath, "/") {
		return capability.Synthetic{}, fmt.Errorf("udev needs an ACTION and a DEVPATH starting with / (such as: add /devices/virtual/block/loop0)")
	}
	ev := NewEvent(action, devpath, props)
	if ev.DevName != "" {
		ev.DevName = filepath.Clean(ev.DevName)
	}
	ev.Props[capability.SynthKey] = capability.SynthValue
	return capability.Synthetic{
		Event:  capability.Event{Kind: uint32(abi.EventUdev), Payload: abi.AppendRecord(nil, ev.Record())},
		Desc:   fmt.Sprintf("udev %s %s", action, devpath),
		Inject: func() { u.Inject(NewEvent(action, devpath, props)) },
	}, nil
}
